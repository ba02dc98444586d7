"""One poll of one source, from download to committed outbox rows.

No transaction is open across the network: the cursor is read, the session
closed, the watcher awaited, and then items, events, deliveries and the new
cursor are committed together. A failed poll changes no item and is recorded
as a source-health failure, never read as "the items disappeared". Whatever a
watcher raises, not only ``SourceError``, fails that source alone: one broken
answer must not stop the other sources or the dispatch after them. A
``StorageError`` while saving is not the source's failure: the run stops and
reports it, and nothing of that poll is kept.

A source an admin disabled from the console (``SourceState.disabled_at``) is
not fetched at all: its poll returns at once, marked ``disabled``, until it is
enabled again. The scheduler keeps calling it, so enabling needs no restart.

Given ``admin`` (``agent.admin_alerts``), a failure that makes the source fail
often enough in a row tells the admins once, and the next success tells them it
recovered; neither can fail the poll.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session

from agent import outbox, store
from agent.config import AgentSettings
from agent.errors import SourceError, StorageError
from agent.matching import Matcher
from agent.models import EventType, SourceState
from watchers import Batch, Watcher

if TYPE_CHECKING:
    from agent.admin_alerts import AdminAlerts

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PollResult:
    """What one poll did."""

    source: str
    ok: bool
    items: int = 0
    events: int = 0
    deliveries: int = 0
    baseline: bool = False
    error: str | None = None
    #: Malformed records the watcher left out.
    skipped: int = 0
    #: Not polled: an admin disabled the source (``SourceState.disabled_at``).
    disabled: bool = False


async def poll(
    name: str,
    watcher: Watcher,
    *,
    db: Engine,
    http: httpx.AsyncClient,
    matcher: Matcher,
    settings: AgentSettings,
    channels: Collection[str],
    now: datetime,
    admin: AdminAlerts | None = None,
) -> PollResult:
    """Poll ``name`` once, store what changed and queue the alerts it causes."""
    with Session(db) as session:
        state = session.get(SourceState, name) or SourceState(name=name)
        cursor, had_items = state.cursor, state.last_item_count
        silent = not state.baseline_done and not watcher.alert_on_first_poll
    if state.disabled_at is not None:
        # Debug, not info: the scheduler still calls every interval, to notice an enable.
        logger.debug("source %s is disabled by %s; not polled", name, state.disabled_by)
        return PollResult(name, ok=True, disabled=True)
    try:
        batch = await watcher.poll(http, cursor)
        _check_not_emptied(batch, had_items)
    except Exception as exc:  # any crash of one source is that source's failure (see above)
        error = describe_failure(exc)
        logger.warning("source %s failed: %s", name, error)
        logger.debug("source %s failed", name, exc_info=exc)
        _record_failure(db, name, error, now=now)
        if admin is not None:
            await admin.after_failure(db, name, now=now)
        return PollResult(name, ok=False, error=error)
    try:
        with Session(db) as session:
            recorded = store.record(
                session,
                name,
                batch.items,
                now=now,
                closing_window=settings.closing_soon_window,
                silent=silent,
            )
            matcher.sync(session)
            rows = [
                row
                for rec in recorded
                for row in _deliveries(matcher, rec, channels=channels, settings=settings, now=now)
            ]
            queued = outbox.enqueue(session, rows)
            # Closing-soon events come from the clock, not the source: they are not news.
            news = silent or any(r.event.type is not EventType.CLOSING_SOON for r in recorded)
            _record_success(session, name, batch, now=now, news=news)
            session.commit()
    except StorageError as exc:
        # The database, not the source: the transaction rolled back, so nothing
        # of this poll is kept and the next run reads the same answer again.
        # Recording a source failure would blame the source (and need a write).
        raise type(exc)(f"{exc}; nothing of the poll of {name} was saved") from exc
    logger.info(
        "source %s: %d items, %d events, %d alerts queued%s%s",
        name,
        len(batch.items),
        len(recorded),
        queued,
        f", {batch.skipped} malformed records skipped" if batch.skipped else "",
        " (baseline)" if silent else "",
    )
    if admin is not None:
        await admin.after_success(db, name, now=now)
    return PollResult(
        name,
        True,
        len(batch.items),
        len(recorded),
        queued,
        baseline=silent,
        skipped=batch.skipped,
    )


#: A failure message longer than this is cut: it is stored and shown in ``/health``.
MAX_ERROR_LENGTH = 1000


def describe_failure(exc: Exception) -> str:
    """Say in one line why a poll failed; an unexpected exception is named by its type."""
    text = str(exc) if isinstance(exc, SourceError) else f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_LENGTH else text[: MAX_ERROR_LENGTH - 1] + "…"


def _check_not_emptied(batch: Batch, had_items: int) -> None:
    # A whole listing that suddenly comes back empty is a broken source far
    # more often than a government that withdrew everything at once.
    if batch.complete and not batch.items and had_items:
        raise SourceError(f"returned no items where the last poll had {had_items}")


def _deliveries(
    matcher: Matcher,
    rec: store.Recorded,
    *,
    channels: Collection[str],
    settings: AgentSettings,
    now: datetime,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for target, match in matcher.match(rec.event, now):
        reasons = [reason.to_dict() for reason in match.reasons]
        rows.extend(
            {
                "subscription_id": target.subscription_id,
                "event_id": rec.event_id,
                "channel": channel,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": target.schedule(
                    channel, zone=settings.timezone, hour=settings.digest_hour
                ).due(now),
                "created_at": now,
                "reasons": reasons,
            }
            for channel in target.channels
            if channel in channels
        )
    return rows


def _record_success(
    session: Session, name: str, batch: Batch, *, now: datetime, news: bool
) -> None:
    state = session.get(SourceState, name) or SourceState(name=name)
    state.cursor = batch.cursor
    state.baseline_done = True
    state.last_attempt_at = state.last_success_at = now
    if news or state.last_change_at is None:
        state.last_change_at = now
    state.last_error = None
    state.consecutive_failures = 0
    state.failing_since = None
    state.last_item_count = len(batch.items)
    state.last_skipped = batch.skipped
    state.items_seen += len(batch.items)
    session.add(state)


def _record_failure(db: Engine, name: str, error: str, *, now: datetime) -> None:
    with Session(db) as session:
        state = session.get(SourceState, name) or SourceState(name=name)
        state.last_attempt_at = now
        state.last_error = error
        if not state.consecutive_failures:
            state.failing_since = now
        state.consecutive_failures += 1
        session.add(state)
        session.commit()
