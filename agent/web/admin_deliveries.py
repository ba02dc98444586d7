"""The console's delivery ledger: every alert's state, why it matched, retry and replay.

* ``GET /admin/deliveries`` -- the newest first, filtered by status, channel
  and subscription, a page at a time;
* ``GET /admin/deliveries/<id>`` -- one delivery: why it matched (the stored
  reasons, as ``smart-agent deliveries why`` prints them, and the sentence the
  subscriber read), the channel's receipt, its attempts and last error;
* ``POST /admin/deliveries/<id>/retry`` -- a failed one waiting for another
  attempt is tried at the next dispatch (``smart-agent deliveries retry``);
* ``POST /admin/deliveries/<id>/replay`` -- a sent, dead or held one is queued
  again (``smart-agent deliveries replay``).

Admins only.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

from sqlmodel import Session, col, select
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

import notifiers
from agent import ledger, outbox
from agent.errors import RuleError
from agent.models import DeliveryStatus, Subscription
from agent.rules import load_node
from agent.rules.explain import explain, scope_of, sentence
from agent.web.admin_subscriptions import choice, page_number
from agent.web.pages import language_of
from agent.web.security import checked_form, login_required
from agent.web.site import Site, redirect

#: Deliveries per page of the ledger.
PAGE_SIZE = 50


class Done(StrEnum):
    """What an action on a delivery did, said on its page afterwards."""

    RETRIED = "retried"
    REPLAYED = "replayed"
    #: Nothing: it was queued or being sent by then.
    NOTHING = "nothing"


def routes(site: Site) -> list[BaseRoute]:
    """This area's routes."""
    admin = login_required(site.user_of, admin=True)

    @admin
    async def listing(request: Request) -> Response:
        chosen = _filters(request)
        page = page_number(request.query_params.get("page"))
        where = ledger.ledger_conditions(
            status=chosen["status"],
            channel=chosen["channel"],
            subscription_id=chosen["subscription"],
        )
        with site.session() as session:
            total = ledger.ledger_count(session, where)
            rows = ledger.ledger(session, where, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
            names = _subscription_names(session)
        values = {
            "rows": rows,
            "chosen": chosen,
            "statuses": [status.value for status in DeliveryStatus],
            "channels": list(notifiers.CHANNELS),
            "subscriptions": names,
            "page": page,
            "total": total,
            "more": page * PAGE_SIZE < total,
        }
        return site.pages.render(request, "admin/deliveries.html", values)

    @admin
    async def detail(request: Request) -> Response:
        with site.session() as session:
            found = _entry(session, request)
        language = language_of(request)
        values = {
            "entry": found,
            "item": found.event.snapshot,
            "reasons": [ledger.format_reason(reason) for reason in found.delivery.reasons],
            "sentence": _sentence(site, found, language),
            "address": (found.subscription.addresses or {}).get(found.delivery.channel),
            "retryable": found.delivery.status in outbox.RETRYABLE,
            "replayable": found.delivery.status in outbox.REPLAYABLE,
            "done": choice(Done, request.query_params.get("done")),
        }
        return site.pages.render(request, "admin/delivery.html", values)

    @admin
    async def retry(request: Request) -> Response:
        await checked_form(request)
        return _act(site, request, outbox.retry_now, Done.RETRIED)

    @admin
    async def replay(request: Request) -> Response:
        await checked_form(request)
        return _act(site, request, outbox.replay, Done.REPLAYED)

    return [
        Route("/admin/deliveries", listing),
        Route("/admin/deliveries/{id:int}", detail),
        Route("/admin/deliveries/{id:int}/retry", retry, methods=["POST"]),
        Route("/admin/deliveries/{id:int}/replay", replay, methods=["POST"]),
    ]


def _act(site: Site, request: Request, action: Callable[..., int], done: Done) -> Response:
    """Run ``action`` (``outbox.retry_now`` or ``outbox.replay``) on one delivery."""
    with site.session() as session:
        found = _entry(session, request)
        count = action(session, [found.delivery.id], now=site.now())
        session.commit()
    outcome = done if count else Done.NOTHING
    return redirect(f"/admin/deliveries/{found.delivery.id}?done={outcome.value}")


def _entry(session: Session, request: Request) -> outbox.Claimed:
    found = ledger.entry(session, request.path_params["id"])
    if found is None:
        raise HTTPException(404, "No such delivery.")
    return found


def _sentence(site: Site, found: outbox.Claimed, language: str) -> str:
    """Why it matched, in words, as the subscriber's message said it (in the page's language)."""
    catalogue = site.pages.messages[language]
    try:
        scope = scope_of(load_node(found.subscription.compiled))
    except RuleError:
        scope = scope_of(None)
    phrases = explain(found.delivery.reasons, catalogue, language, scope)
    return sentence(phrases, catalogue) if phrases else ""


def _filters(request: Request) -> dict[str, Any]:
    """The ledger's filters from the query: status, channel, subscription id (or ``None``)."""
    params = request.query_params
    status = choice(DeliveryStatus, params.get("status"))
    channel = params.get("channel")
    subscription = params.get("subscription", "")
    return {
        "status": status.value if status else None,
        "channel": channel if channel in notifiers.CHANNELS else None,
        "subscription": int(subscription) if subscription.isdigit() else None,
    }


def _subscription_names(session: Session) -> list[tuple[int, str]]:
    """Every subscription's id and name, by name: the subscription filter's choices."""
    rows = session.exec(select(Subscription.id, Subscription.name).order_by(col(Subscription.name)))
    return [(sub_id, name) for sub_id, name in rows if sub_id is not None]
