"""An organisation's log: who changed which shared subscription or member, when, and how.

Each change is written by ``accounts.record`` in the transaction that makes
it, with snapshots of the fields before and after; an edit's line lists the
fields that differ. A shared subscription's snapshot is flat, as in a
subscription file: its name, the rule's fields, its channels, each addressed
channel's address under the channel's field name (``email``...), language,
cadence and whether it is active.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from agent import organisations
from agent.accounts import AuditAction, AuditEntry
from agent.web.orgs_access import access
from agent.web.security import login_required
from agent.web.site import Site

#: Entries on one page of the log.
PAGE_SIZE = 20
#: Entries the organisation's page shows.
RECENT = 5
#: No log is this long; a bigger ``?page=`` shows an empty page.
MAX_PAGE = 100_000
#: The actions whose line says which fields changed from what to what.
WITH_CHANGES = frozenset({AuditAction.EDITED, AuditAction.ROLE_CHANGED})


@dataclass(frozen=True)
class Change:
    """One field an entry changed."""

    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class LogLine:
    """One entry of the log as the page shows it."""

    entry: AuditEntry
    changes: tuple[Change, ...]


def lines(entries: list[AuditEntry]) -> list[LogLine]:
    """The entries as lines, with the changed fields of edits and role changes."""
    return [
        LogLine(
            entry,
            tuple(
                Change(name, old, new) for name, (old, new) in organisations.changes(entry).items()
            )
            if entry.action in WITH_CHANGES
            else (),
        )
        for entry in entries
    ]


class LogPage:
    """``GET /orgs/{slug}/log``: every entry, newest first, a page at a time."""

    def __init__(self, site: Site) -> None:
        self.site = site

    def routes(self) -> list[BaseRoute]:
        """The log's route."""
        guard = login_required(self.site.user_of)
        return [Route("/orgs/{slug}/log", guard(self.show), methods=["GET"])]

    async def show(self, request: Request) -> Response:
        """A page of the log; ``?page=`` counts from 1."""
        acc = access(self.site, request)
        page = _page_number(request.query_params.get("page"))
        with self.site.session() as session:
            entries, total = organisations.audit_log(
                session, acc.org.id or 0, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE
            )
        pages = max(1, -(-total // PAGE_SIZE))
        return self.site.pages.render(
            request,
            "orgs/log.html",
            {"acc": acc, "lines": lines(entries), "page": page, "pages": pages, "total": total},
        )


def _page_number(given: str | None) -> int:
    # Capped: a huge number would overflow the database's OFFSET (a 500, not an empty page).
    try:
        return min(max(1, int(given or "1")), MAX_PAGE)
    except ValueError:
        return 1
