"""The console's template previews: any channel's message in any language, about a real item.

* ``GET /admin/templates?channel=&language=&item=`` -- a stored item (the
  newest by default, or one of the recent ones) rendered as a new alert with
  the running templates (an admin's overrides included), as
  ``smart-agent templates preview`` writes it: the subject, the text, and the
  HTML in a sandboxed frame. The channels are the registry's, so a new
  channel appears here by itself.

Admins only.
"""

from __future__ import annotations

from typing import Any

from jinja2 import TemplateError
from sqlmodel import Session, col, select
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

import notifiers
from agent import i18n, preview
from agent.models import Item, StoredItem
from agent.web.pages import language_of
from agent.web.security import login_required
from agent.web.site import Site

#: How many of the newest stored items the item choice offers.
RECENT = 30


def routes(site: Site) -> list[BaseRoute]:
    """This area's routes."""
    admin = login_required(site.user_of, admin=True)

    @admin
    async def show(request: Request) -> Response:
        params = request.query_params
        channels = list(notifiers.CHANNELS)
        channel = next((name for name in channels if name == params.get("channel")), channels[0])
        language = next(
            (code for code in i18n.LANGUAGES if code == params.get("language")),
            language_of(request),
        )
        with site.session() as session:
            recent = _recent(session)
            chosen = _chosen(session, params.get("item"), recent)
        item = chosen.to_item() if chosen is not None else preview.SAMPLE
        if chosen is not None and chosen.id not in {row.id for row in recent}:
            recent = [chosen, *recent]  # an older item asked for by id is offered too
        values: dict[str, Any] = {
            "channels": channels,
            "channel": channel,
            "languages_shown": i18n.LANGUAGES,
            "language": language,
            "direction": i18n.direction(language),
            "recent": [(row.id, _label(row.to_item())) for row in recent],
            "chosen": chosen.id if chosen is not None else None,
            "item": item,
            "messages": [],
            "error": None,
        }
        try:
            outgoing = preview.preview(site.renderer, channel, language, item)
            values["messages"] = [out.message for out in outgoing]
        except TemplateError as exc:  # an override broken since start-up: say where
            values["error"] = f"{type(exc).__name__}: {exc}"
        return site.pages.render(request, "admin/templates.html", values)

    return [Route("/admin/templates", show)]


def _recent(session: Session) -> list[StoredItem]:
    """The newest stored items, newest first (as ``templates preview`` picks its default)."""
    query = select(StoredItem).order_by(col(StoredItem.changed_at).desc(), col(StoredItem.id))
    return list(session.exec(query.limit(RECENT)))


def _chosen(session: Session, given: str | None, recent: list[StoredItem]) -> StoredItem | None:
    """The item asked for (404 if there is none), else the newest; ``None``: nothing stored."""
    if not given:
        return recent[0] if recent else None
    row = session.get(StoredItem, int(given)) if given.isdigit() else None
    if row is None:
        raise HTTPException(404, "No such item.")
    return row


def _label(item: Item) -> str:
    """An item as the choice lists it: its title, shortened."""
    return item.title if len(item.title) <= 80 else item.title[:79] + "…"
