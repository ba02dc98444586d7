"""Tell the admins once when a source keeps failing, and once when it answers again.

After ``[agent.admin_alerts] after`` failed polls in a row, one alert goes to
every admin address configured there, on every opened channel that has one;
the next successful poll sends one "recovered" message. Several processes may
poll one source (two ``serve``s over one database, "poll now" in the console):
each claims the right to speak with one conditional UPDATE of
``source_state.alerted_at``, and only the one whose UPDATE changed the row
sends. Nothing here names a channel: addresses are read by each channel's
``address_field``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from agent import i18n
from agent.config import AdminAlertSettings
from agent.errors import RateLimited
from agent.models import SourceState
from agent.rendering import Renderer
from notifiers import CHANNELS, Message, Notifier

logger = logging.getLogger(__name__)

#: The templates of both messages: ``<channel>/source_alert/``.
NOTICE = "source_alert"
#: Where the messages send the admins: the console's sources page.
SOURCES_PAGE = "/admin/sources"
#: The longest a channel's flood control may make an alert wait (seconds): the
#: alert goes once more after that wait, inside the poll, instead of being lost.
MAX_FLOOD_WAIT = 10.0


class HealthChange(StrEnum):
    """What the admins are told about a source."""

    FAILING = "failing"
    RECOVERED = "recovered"


def claim_failing(db: Engine, name: str, *, after: int, now: datetime) -> bool:
    """Mark ``name`` as alerted if it failed ``after`` times in a row and is not yet.

    True for exactly one caller per run of failures: the UPDATE is the lock.
    """
    column = col(SourceState.alerted_at)
    claim = (
        update(SourceState)
        .where(col(SourceState.name) == name, column.is_(None))
        .where(col(SourceState.consecutive_failures) >= after)
        .values(alerted_at=now)
    )
    with db.begin() as connection:
        return connection.execute(claim).rowcount == 1


def claim_recovered(db: Engine, name: str) -> bool:
    """Clear ``name``'s alert mark after a success; True for exactly one caller."""
    claim = (
        update(SourceState)
        .where(col(SourceState.name) == name, col(SourceState.alerted_at).is_not(None))
        .where(col(SourceState.consecutive_failures) == 0)
        .values(alerted_at=None)
    )
    with db.begin() as connection:
        return connection.execute(claim).rowcount == 1


def _release(db: Engine, name: str, *, claimed_at: datetime) -> None:
    """Give back a claim no channel could honour, so the next failure tries again."""
    release = (
        update(SourceState)
        .where(col(SourceState.name) == name, col(SourceState.alerted_at) == claimed_at)
        .values(alerted_at=None)
    )
    with db.begin() as connection:
        connection.execute(release)


@dataclass(frozen=True)
class AdminAlerts:
    """The admins' addresses and the opened channels that reach them."""

    settings: AdminAlertSettings
    notifiers: Mapping[str, Notifier]
    renderer: Renderer
    public_url: str

    def addresses(self) -> dict[str, str]:
        """The admins' address on each channel that has one configured."""
        found = {}
        for channel, cls in CHANNELS.items():
            field = cls.address_field
            address = getattr(self.settings, field, None) if field else None
            if address:
                found[channel] = str(address)
        return found

    async def after_failure(self, db: Engine, name: str, *, now: datetime) -> bool:
        """Send the alert if this failure is the one that calls for it; True if sent."""
        after = self.settings.after
        if not after or not self.addresses():
            return False
        if not claim_failing(db, name, after=after, now=now):
            return False
        with Session(db) as session:
            state = session.get(SourceState, name)
            assert state is not None, "claimed a source with no state"
        language = self.settings.language
        since = state.failing_since or now
        values = {
            "failures": i18n.number(state.consecutive_failures, language),
            "error": state.last_error or "",
            "since": self._moment(since),
        }
        if not await self._send(HealthChange.FAILING, name, values, now=now):
            _release(db, name, claimed_at=now)
            return False
        return True

    async def after_success(self, db: Engine, name: str, *, now: datetime) -> bool:
        """Send "recovered" if an alert stood for ``name``; True if one channel took it."""
        if not claim_recovered(db, name):
            return False
        return await self._send(HealthChange.RECOVERED, name, {}, now=now)

    async def _send(
        self, change: HealthChange, name: str, values: Mapping[str, str], *, now: datetime
    ) -> bool:
        """Send to every admin address; True if at least one channel accepted."""
        context = {
            "change": change.value,
            "source": name,
            "at": self._moment(now),
            "sources_url": self.public_url.rstrip("/") + SOURCES_PAGE,
            **values,
        }
        accepted = False
        for channel, address in self.addresses().items():
            notifier = self.notifiers.get(channel)
            if notifier is None:
                logger.warning("admin alert for source %s: channel %s is not open", name, channel)
                continue
            try:
                message = self.renderer.render_notice(
                    channel, NOTICE, to=address, language=self.settings.language, values=context
                )
                await _send_through_flood_control(notifier, message)
            except Exception as exc:  # one channel's failure must not stop the poll or the others
                logger.warning("admin alert for source %s not sent by %s: %s", name, channel, exc)
                continue
            accepted = True
        if accepted:
            logger.info("admins told that source %s is %s", name, change.value)
        return accepted

    def _moment(self, when: datetime) -> str:
        language = self.settings.language
        strings = self.renderer.strings(language)
        return i18n.moment(when, language, strings, self.renderer.zone)


async def _send_through_flood_control(notifier: Notifier, message: Message) -> None:
    """Send ``message``; once more if the channel asked for a short wait (Telegram's 429).

    Nothing queues an admin alert for later as the outbox does for subscribers'.
    """
    try:
        await notifier.send(message)
    except RateLimited as exc:
        if exc.retry_after > MAX_FLOOD_WAIT:
            raise
        await asyncio.sleep(exc.retry_after)
        await notifier.send(message)
