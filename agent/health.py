"""The service's health: each configured source's state, and one verdict for monitors.

A source is ``pending`` until its first poll finishes, ``failing`` while its
last poll failed, ``stale`` when it answers but has brought nothing new or
changed for longer than its ``stale_after``, ``ok`` otherwise, and
``disabled`` when the configuration turns it off or an admin disabled it
from the console (until enabled again). The service is ``ok`` only
when every enabled source is; it is ``starting`` while any source is still
pending, and ``degraded`` when a source fails or is stale (or none is enabled).
``/health`` answers 200 only for ``ok`` and 503 otherwise, so a monitor can
watch the status code alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from agent.models import Delivery, SourceState
from watchers import Watcher


class SourceStatus(StrEnum):
    """What one source's polls say."""

    PENDING = "pending"
    OK = "ok"
    FAILING = "failing"
    STALE = "stale"
    DISABLED = "disabled"


class ServiceStatus(StrEnum):
    """The verdict for monitors."""

    OK = "ok"
    STARTING = "starting"
    DEGRADED = "degraded"


@dataclass(frozen=True)
class SourceHealth:
    """One source's health, as ``/health`` and ``sources status`` show it."""

    name: str
    status: SourceStatus
    state: SourceState | None
    #: When the source started failing, or became stale; ``None`` when neither.
    since: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        state = self.state or SourceState(name=self.name)
        return {
            "name": self.name,
            "status": self.status.value,
            "ok": self.status in (SourceStatus.OK, SourceStatus.DISABLED),
            "since": _iso(self.since),
            "last_attempt_at": _iso(state.last_attempt_at),
            "last_success_at": _iso(state.last_success_at),
            "last_change_at": _iso(state.last_change_at),
            "consecutive_failures": state.consecutive_failures,
            "last_error": state.last_error,
            "last_item_count": state.last_item_count,
            "last_skipped": state.last_skipped or 0,
            # When, not by whom: /health is public, and an admin's address is not.
            "disabled_at": _iso(state.disabled_at),
        }


@dataclass(frozen=True)
class Health:
    """The whole service's health."""

    status: ServiceStatus
    sources: list[SourceHealth]
    outbox: dict[str, int] = field(default_factory=dict)

    def named(self, status: SourceStatus) -> list[str]:
        """Return the names of the sources in ``status``."""
        return [s.name for s in self.sources if s.status is status]

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "status": self.status.value,
            "failing": self.named(SourceStatus.FAILING),
            "stale": self.named(SourceStatus.STALE),
            "pending": self.named(SourceStatus.PENDING),
            "sources": [s.to_dict() for s in self.sources],
            "outbox": self.outbox,
        }


def check(db: Engine, sources: Mapping[str, Watcher], *, now: datetime) -> Health:
    """Read every configured source's state and the outbox, and give the verdict."""
    with Session(db) as session:
        states = {s.name: s for s in session.exec(select(SourceState)).all()}
        counts = session.exec(
            select(Delivery.status, func.count()).group_by(col(Delivery.status))
        ).all()
    found = [source_health(n, w, states.get(n), now=now) for n, w in sources.items()]
    return Health(verdict(found), found, dict(counts))


def source_health(
    name: str, watcher: Watcher, state: SourceState | None, *, now: datetime
) -> SourceHealth:
    """Judge one source from its stored state."""
    if not watcher.enabled or (state is not None and state.disabled_at is not None):
        return SourceHealth(name, SourceStatus.DISABLED, state)
    if state is None or state.last_attempt_at is None:
        return SourceHealth(name, SourceStatus.PENDING, state)
    if state.consecutive_failures:
        return SourceHealth(name, SourceStatus.FAILING, state, state.failing_since)
    limit = watcher.stale_limit
    news = state.last_change_at or state.last_success_at
    if limit is not None and news is not None and now - news > limit:
        return SourceHealth(name, SourceStatus.STALE, state, news + limit)
    return SourceHealth(name, SourceStatus.OK, state)


def verdict(sources: list[SourceHealth]) -> ServiceStatus:
    """One status for the service: degraded beats starting beats ok."""
    statuses = {s.status for s in sources} - {SourceStatus.DISABLED}
    if not statuses or statuses & {SourceStatus.FAILING, SourceStatus.STALE}:
        return ServiceStatus.DEGRADED
    if SourceStatus.PENDING in statuses:
        return ServiceStatus.STARTING
    return ServiceStatus.OK


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
