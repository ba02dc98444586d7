"""The sources' public status: so "no alerts" can be told apart from "a source is broken".

Each configured source's health (``agent.health``), how many items it brought
in the last day, and, when it fails, a short category of the failure: the
raw error is for admins only, as it may hold a source's URL and its key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import func
from sqlmodel import Session, col, select

from agent.health import Health, ServiceStatus, SourceHealth, SourceStatus, verdict
from agent.models import StoredItem

#: "New in the last day" counts items first seen within this window.
RECENT = timedelta(days=1)


class Failure(StrEnum):
    """What sort of failure a source's last error was, in words fit for the public."""

    BLOCKED = "blocked"
    UNREACHABLE = "unreachable"
    SERVER_ERROR = "server_error"
    EMPTIED = "emptied"
    UNREADABLE = "unreadable"


#: Recognised by the words ``watchers`` and ``agent.pipeline`` write (first match wins);
#: anything else is an answer that could not be read.
_PATTERNS: tuple[tuple[Failure, re.Pattern[str]], ...] = (
    (Failure.BLOCKED, re.compile(r"\bblocked\b")),
    (Failure.UNREACHABLE, re.compile(r"\b\w*(Connect|Timeout|Network|Protocol)\w*\b")),
    (Failure.SERVER_ERROR, re.compile(r"\bHTTP [45]\d\d\b")),
    (Failure.EMPTIED, re.compile(r"returned no items")),
)


@dataclass(frozen=True)
class SourceLine:
    """One source's row on the status page."""

    name: str
    status: SourceStatus
    last_success_at: datetime | None
    #: Items first seen in the last ``RECENT``.
    recent: int
    #: Failing or stale since then; when a source was turned off, for a disabled one.
    since: datetime | None
    failure: Failure | None


@dataclass(frozen=True)
class Board:
    """The whole status page: a verdict and one line per source."""

    verdict: ServiceStatus
    sources: list[SourceLine]


def board(session: Session, health: Health, now: datetime) -> Board:
    """The status page's content from ``agent.health.check``'s report."""
    judged = [_admin_disabled(source) for source in health.sources]
    recent = _recent_counts(session, now - RECENT)
    lines = [_line(source, recent.get(source.name, 0)) for source in judged]
    return Board(verdict(judged), lines)


def failure_of(error: str | None) -> Failure | None:
    """The category of a source's last error."""
    if not error:
        return None
    return next((kind for kind, pattern in _PATTERNS if pattern.search(error)), Failure.UNREADABLE)


def _admin_disabled(source: SourceHealth) -> SourceHealth:
    # An admin may turn a source off from the console (``SourceState.disabled_at``):
    # the scheduler skips it, so it is disabled here whatever its last poll said.
    state = source.state
    if state is not None and state.disabled_at is not None:
        return replace(source, status=SourceStatus.DISABLED, since=state.disabled_at)
    return source


def _line(source: SourceHealth, recent: int) -> SourceLine:
    state = source.state
    failing = source.status is SourceStatus.FAILING
    return SourceLine(
        name=source.name,
        status=source.status,
        last_success_at=state.last_success_at if state is not None else None,
        recent=recent,
        since=source.since,
        failure=failure_of(state.last_error) if failing and state is not None else None,
    )


def _recent_counts(session: Session, since: datetime) -> dict[str, int]:
    query = (
        select(StoredItem.source, func.count())
        .where(col(StoredItem.first_seen_at) >= since)
        .group_by(col(StoredItem.source))
    )
    return dict(session.exec(query).all())
