"""The double opt-in's last step: the link in the confirmation message.

* ``GET /confirm/<token>`` -- a page with a "confirm" button. A GET alone
  confirms nothing: mail scanners open every link in a message.
* ``POST /confirm/<token>`` (CSRF) -- turns the subscription on, then shows its
  manage link and feeds.

A link that is not genuine is not found (404); a genuine one past its expiry
says so (410). A link confirms once: confirming gives the subscription a new
link secret (``subscriptions.confirm``), so the link is no longer genuine and
never turns back on a subscription that was unsubscribed since (a subscription
no longer awaiting confirmation with the same secret says "already used", 410).
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from agent import subscriptions
from agent.links import LinkState, Purpose
from agent.links import parse as parse_token
from agent.web.security import checked_form
from agent.web.signup import ready_links
from agent.web.site import Site


def confirm_routes(site: Site) -> list[BaseRoute]:
    """The confirmation link's routes."""

    async def confirm(request: Request) -> Response:
        if request.method == "POST":
            await checked_form(request)
        token = parse_token(request.path_params["token"])
        with site.session() as session:
            sub = subscriptions.by_public_id(session, token.public_id) if token else None
            state = site.links.check(token, sub, Purpose.CONFIRM)
            if sub is None or state is LinkState.INVALID:
                raise HTTPException(404, "This link is not valid.")
            if state is LinkState.EXPIRED:
                return site.pages.render(request, "subscribe/expired.html", {}, status=410)
            if not sub.awaiting_confirmation:
                return site.pages.render(request, "subscribe/used.html", {}, status=410)
            if request.method == "GET":
                return site.pages.render(request, "subscribe/confirm.html", {"sub": sub})
            subscriptions.confirm(session, sub, now=site.now())
            session.commit()
        values = {"sub": sub, "links": ready_links(site.links, sub)}
        return site.pages.render(request, "subscribe/confirmed.html", values)

    return [Route("/confirm/{token}", confirm, methods=["GET", "POST"])]
