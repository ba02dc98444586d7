"""A subscriber's pages behind signed links: manage every subscription, one-click unsubscribe.

* ``GET /manage/<signed token>`` -- every subscription sent to the link's
  address (``agent.web.manage_access``): its rule in words, channels, cadence,
  language, state and feed links; pause, resume, delete, leave everything;
* ``GET /manage/<token>/s/<public id>`` -- one subscription's settings: name
  and rule, how often, channels, language; each form POSTs to
  ``/manage/<token>/s/<public id>/<action>`` (``agent.web.manage_actions``);
* ``GET|POST /manage/<token>/leave`` -- ask, then delete them all;
  ``GET /manage/goodbye`` -- what is left when none is;
* ``GET|POST /unsubscribe/<signed token>`` -- a page with one button, and RFC
  8058 one-click: the POST needs no CSRF token (mail clients send it with no
  session, section 3.1), deactivates the subscription and cancels what it had
  queued.

Links are checked on every request (``agent.links``): 404 unless genuine,
410 once expired, saying that a newer message has a fresh link. Pages are in
the subscription's language unless the visitor chose another (``?lang=``).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from agent import accounts, outbox, subscriptions
from agent.accounts import AuditAction
from agent.links import LinkState, Purpose
from agent.models import Subscription
from agent.web.manage_access import (
    check_link,
    manage_path,
    page_language,
    refusal,
    render_in,
    subscriber_of,
)
from agent.web.manage_actions import SUBSCRIBER, Action, act, leave_all
from agent.web.manage_pages import Visit, goodbye, leave, overview, settings
from agent.web.security import checked_form
from agent.web.site import Site

Work = Callable[[Visit, FormData | None], Response]


def routes(site: Site) -> list[BaseRoute]:
    """This area's routes."""

    async def manage(request: Request) -> Response:
        return await through_link(site, request, lambda visit, form: overview(visit))

    async def subscription(request: Request) -> Response:
        def show(visit: Visit, form: FormData | None) -> Response:
            return settings(visit, _target(visit))

        return await through_link(site, request, show)

    async def change(request: Request) -> Response:
        try:
            action = Action(request.path_params["action"])
        except ValueError:
            raise HTTPException(404) from None

        def do(visit: Visit, form: FormData | None) -> Response:
            return act(visit, action, _target(visit), form or FormData())

        return await through_link(site, request, do)

    async def leave_page(request: Request) -> Response:
        def ask_or_go(visit: Visit, form: FormData | None) -> Response:
            return leave(visit) if form is None else leave_all(visit)

        return await through_link(site, request, ask_or_go)

    async def goodbye_page(request: Request) -> Response:
        return goodbye(site, request)

    async def unsubscribe(request: Request) -> Response:
        return one_click(site, request)

    return [
        Route("/manage/goodbye", goodbye_page),
        Route("/manage/{token}", manage),
        Route("/manage/{token}/leave", leave_page, methods=["GET", "POST"]),
        Route("/manage/{token}/s/{sub}", subscription),
        Route("/manage/{token}/s/{sub}/{action}", change, methods=["POST"]),
        Route("/unsubscribe/{token}", unsubscribe, methods=["GET", "POST"]),
    ]


async def through_link(site: Site, request: Request, work: Work) -> Response:
    """Check the manage link (and a POST's CSRF token), then do ``work`` for its subscriber."""
    form = await checked_form(request) if request.method == "POST" else None
    token = request.path_params["token"]
    with site.session() as session:
        state, own = check_link(site, session, token, Purpose.MANAGE)
        if own is None or state is not LinkState.VALID:
            return refusal(site, request, state, own)
        language = page_language(request, own.language)
        visit = Visit(site, request, session, subscriber_of(session, own), token, language)
        return work(visit, form)


def one_click(site: Site, request: Request) -> Response:
    """The unsubscribe page (GET) and RFC 8058 one-click unsubscribe (POST, no CSRF)."""
    with site.session() as session:
        state, sub = check_link(site, session, request.path_params["token"], Purpose.UNSUBSCRIBE)
        if sub is None or sub.id is None or state is not LinkState.VALID:
            return refusal(site, request, state, sub)
        done = request.method == "POST"
        if done:
            if sub.organisation_id is not None and sub.active:
                accounts.record(
                    session,
                    actor=SUBSCRIBER,
                    action=AuditAction.PAUSED,
                    now=site.now(),
                    organisation_id=sub.organisation_id,
                    subscription_id=sub.id,
                    subject=sub.name,
                    before={"active": True},
                    after={"active": False},
                )
            subscriptions.set_active(session, sub, False, now=site.now())
            outbox.cancel(session, sub.id, reason="unsubscribed")
            session.commit()
        values = {
            "name": sub.name,
            "active": sub.active,
            "action": request.url.path,
            "manage": manage_path(site, sub),
        }
        page = "manage/unsubscribed.html" if done else "manage/unsubscribe.html"
        return render_in(site, request, page_language(request, sub.language), page, values)


def _target(visit: Visit) -> Subscription:
    """The subscription the path names, if it is this subscriber's; 404 otherwise."""
    found = visit.subscriber.find(visit.request.path_params["sub"])
    if found is None:
        raise HTTPException(404)
    return found
