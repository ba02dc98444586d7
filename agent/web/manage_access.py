"""Who a signed link speaks for, and pages in the subscriber's language.

A manage link is signed for one subscription; it speaks for every other
subscription sent to the same address (the same e-mail address, the same
Telegram chat), since whoever reads that address can open the link anyway.
A subscription still awaiting its double opt-in speaks only for itself: its
link may have been shown to whoever typed the address, not to its owner.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from agent import i18n
from agent.links import LinkState, Purpose
from agent.links import parse as parse_token
from agent.models import Subscription
from agent.subscriptions import ADDRESS_FIELDS, by_public_id
from agent.web.site import Site


class Status(StrEnum):
    """A subscription's state, as the subscriber reads it."""

    ACTIVE = "active"
    PAUSED = "paused"
    #: Made on the web; its address has not confirmed yet.
    AWAITING = "awaiting"


def status_of(sub: Subscription) -> Status:
    """Whether ``sub`` sends alerts, is paused, or waits for its confirmation."""
    if sub.awaiting_confirmation:
        return Status.AWAITING
    return Status.ACTIVE if sub.active else Status.PAUSED


def addresses_of(sub: Subscription) -> set[tuple[str, str]]:
    """The (channel, address) pairs ``sub`` sends to, compared case-insensitively."""
    found = (sub.addresses or {}).items()
    return {(name, address.casefold()) for name, address in found if name in ADDRESS_FIELDS}


@dataclass
class Subscriber:
    """What a manage link reaches: its own subscription first, then the others at its address."""

    own: Subscription
    subscriptions: list[Subscription]

    def find(self, public_id: str) -> Subscription | None:
        """This subscriber's subscription with ``public_id``; ``None`` for anyone else's."""
        return next((s for s in self.subscriptions if s.public_id == public_id), None)

    def others(self, gone: Subscription) -> list[Subscription]:
        """The subscriptions left once ``gone`` is deleted, confirmed ones first."""
        left = [sub for sub in self.subscriptions if sub.id != gone.id]
        return sorted(left, key=lambda sub: bool(sub.awaiting_confirmation))


def subscriber_of(session: Session, own: Subscription) -> Subscriber:
    """``own`` and, once its address is confirmed, every subscription sharing an address."""
    mine = addresses_of(own)
    if own.awaiting_confirmation or not mine:
        return Subscriber(own, [own])
    # A scan, not a query: addresses are JSON. Fine for thousands of subscriptions.
    query = select(Subscription).where(col(Subscription.id) != own.id).order_by(Subscription.name)
    others = [sub for sub in session.exec(query) if addresses_of(sub) & mine]
    return Subscriber(own, [own, *others])


def check_link(
    site: Site, session: Session, text: str, purpose: Purpose
) -> tuple[LinkState, Subscription | None]:
    """Whether ``text`` is a genuine, unexpired ``purpose`` link, and of which subscription."""
    token = parse_token(text)
    sub = by_public_id(session, token.public_id) if token is not None else None
    return site.links.check(token, sub, purpose), sub


def manage_path(site: Site, sub: Subscription) -> str:
    """A fresh manage link of ``sub``, as a path on this site."""
    return urlsplit(site.links.manage_url(sub)).path


def page_language(request: Request, default: str) -> str:
    """The visitor's own choice (``?lang=``, then the session's), else ``default``."""
    for chosen in (request.query_params.get("lang"), request.session.get("lang")):
        if chosen in i18n.LANGUAGES:
            return str(chosen)
    return default if default in i18n.LANGUAGES else i18n.LANGUAGES[0]


def render_in(
    site: Site,
    request: Request,
    language: str,
    name: str,
    values: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    path: str | None = None,
) -> HTMLResponse:
    """Render page ``name`` in ``language`` without making it the visitor's lasting choice.

    ``path``: the page's own address, when it answers a POST elsewhere (so the
    language switch links to the page, not to the form's target).
    """
    if path is not None:
        request = Request({**request.scope, "path": path}, request.receive)
    return site.pages.render(request, name, values, status=status, language=language)


def refusal(site: Site, request: Request, state: LinkState, sub: Subscription | None) -> Response:
    """A genuine but expired link says so (410); anything else is just not found (404)."""
    if state is LinkState.EXPIRED and sub is not None:
        language = page_language(request, sub.language)
        return render_in(site, request, language, "manage/expired.html", status=410)
    # No subscription to take a language from: the visitor's, as on any page.
    return site.pages.render(request, "manage/invalid.html", status=404)
