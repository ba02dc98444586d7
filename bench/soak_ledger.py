"""The soak benchmark's ledger: which alerts were owed, which arrived, how late, how often.

An alert is (channel, recipient, item). Those owed are worked out apart from
the workers, from the plan: each replayed copy becomes the item the Budget Key
watcher makes of it, and the agent's own ``Matcher``, loaded from the
subscriptions in the database, says who wants it on which channel. Those that
arrived are read from the channels' logs (``bench.soak_sinks``): a message
carries its recipient and the links of the items it holds. Nothing depends on
reading delivery rows before retention deletes them.

* lost: owed and never arrived, unless the run ended with it still queued
  (counted apart) or the hourly cap rolled it into the subscriber's daily
  digest (``held``, also apart: it goes out at the digest hour);
* duplicated: arrived more than once; a message resent after a crash keeps its
  Message-ID (e-mail) or its ``#sa…`` reference (Telegram), so a reader can tell
  it is the same message: such copies are *recognisable*;
* latency: from the instant the source made the item visible to the instant
  the channel accepted the first message that carried it.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import Session, select

from agent import db as database
from agent.matching import Matcher
from agent.models import Event, EventType, Subscription
from bench import soak_plan

#: The channels whose messages leave the service (a feed is read, not sent).
SENT_CHANNELS = ("email", "telegram")
#: (channel, recipient, item key)
Alert = tuple[str, str, str]

_OPEN_ROWS = """
SELECT d.channel, s.addresses ->> d.channel, i.key, d.status, coalesce(d.rolled_over, false)
FROM delivery d JOIN subscription s ON s.id = d.subscription_id
JOIN event e ON e.id = d.event_id JOIN item i ON i.id = e.item_id
WHERE d.status <> 'sent' AND d.channel IN ('email', 'telegram')
"""


@dataclass(frozen=True)
class Arrival:
    """One message a channel accepted."""

    channel: str
    t: float
    to: str
    ident: str | None
    keys: tuple[str, ...]


@dataclass(frozen=True)
class Owed:
    """What the matcher says the run owes."""

    alerts: frozenset[Alert]
    #: Every delivery row the replay should cause, feeds included.
    deliveries: int


@dataclass(frozen=True)
class Ledger:
    """What the run owed, what arrived, and how it went."""

    owed: int
    owed_deliveries: int
    arrived: int
    lost: int
    #: Owed, not arrived, and still waiting to be sent when the run ended.
    queued: int
    #: Rolled into a daily digest by the hourly cap.
    held: int
    #: Arrived without being owed (should be none).
    unexpected: int
    duplicated: int
    #: Duplicates whose every copy had one identity (Message-ID, Telegram reference).
    recognisable: int
    messages: dict[str, int]
    #: Seconds from visible to accepted, per channel.
    latencies: dict[str, list[float]]
    #: Alerts owed, and still queued at the end, per channel.
    owed_on: dict[str, int]
    queued_on: dict[str, int]

    def latency(self, share: float, channel: str | None = None) -> float | None:
        """The ``share`` quantile (nearest rank) of latency, on one channel or all."""
        values = sorted(
            v for name, found in self.latencies.items() if channel in (None, name) for v in found
        )
        return values[max(math.ceil(share * len(values)) - 1, 0)] if values else None


def visible(path: Path) -> dict[str, float]:
    """When each item became visible at the source (``bench.soak_source``'s log)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return {row["key"]: float(row["t"]) for row in map(json.loads, lines)}


def arrivals(channel: str, path: Path, base_url: str) -> list[Arrival]:
    """The messages one channel's log holds, with the keys of the items they link to."""
    prefix = f"{base_url}/i/"
    found = []
    for row in map(json.loads, path.read_text(encoding="utf-8").splitlines()):
        keys = tuple(u.removeprefix(prefix) for u in row["urls"] if u.startswith(prefix))
        found.append(Arrival(channel, float(row["t"]), str(row["to"]), row["id"], keys))
    return found


def owed(
    session: Session, plan: Sequence[soak_plan.Copy], seen: dict[str, float], base_url: str
) -> Owed:
    """Match every published copy with the agent's matcher; return the alerts it owes."""
    matcher = Matcher()
    matcher.sync(session)
    addresses = {
        sid: found or {}
        for sid, found in session.exec(select(Subscription.id, Subscription.addresses))
    }
    docs = soak_plan.pool()
    alerts: set[Alert] = set()
    deliveries = 0
    for planned in plan:
        doc = soak_plan.document(docs, planned)
        if doc["doc_id"] not in seen:
            continue  # the run ended before it was published
        item = soak_plan.item(doc, planned.doc_type, base_url)
        event = Event(type=EventType.NEW, item=item, dedup_key="new")
        now = datetime.fromtimestamp(seen[doc["doc_id"]], UTC)
        for target, _ in matcher.match(event, now):
            deliveries += len(target.channels)
            alerts.update(
                (channel, addresses[target.subscription_id][channel], item.key)
                for channel in target.channels
                if channel in SENT_CHANNELS
            )
    return Owed(frozenset(alerts), deliveries)


def open_rows(session: Session) -> tuple[set[Alert], set[Alert]]:
    """Alerts not sent when the run ended: (still waiting, held for a digest by the cap)."""
    waiting: set[Alert] = set()
    held: set[Alert] = set()
    for channel, to, key, status, rolled in session.connection().exec_driver_sql(_OPEN_ROWS):
        if status in ("pending", "retrying", "sending"):
            (held if rolled else waiting).add((channel, to, key))
    return waiting, held


def from_database(
    url: str, plan: Sequence[soak_plan.Copy], seen: dict[str, float], base_url: str
) -> tuple[Owed, set[Alert], set[Alert]]:
    """What the run owes, and the alerts still waiting or held when it ended."""
    engine = database.connect(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with Session(engine) as session:
            waiting, held = open_rows(session)
            return owed(session, plan, seen, base_url), waiting, held
    finally:
        engine.dispose()


def settle(
    due: Owed,
    messages: Iterable[Arrival],
    seen: dict[str, float],
    waiting: set[Alert],
    held: set[Alert],
) -> Ledger:
    """Compare what arrived with what was owed."""
    copies: dict[Alert, list[Arrival]] = defaultdict(list)
    counts: dict[str, int] = defaultdict(int)
    for message in messages:
        counts[message.channel] += 1
        for key in message.keys:
            copies[(message.channel, message.to, key)].append(message)
    missing = due.alerts - copies.keys()
    still = missing & waiting
    latencies: dict[str, list[float]] = defaultdict(list)
    for alert, found in copies.items():
        if alert in due.alerts:
            latencies[alert[0]].append(min(m.t for m in found) - seen[alert[2]])
    repeated = {alert: found for alert, found in copies.items() if len(found) > 1}
    return Ledger(
        owed=len(due.alerts),
        owed_deliveries=due.deliveries,
        arrived=len(copies.keys() & due.alerts),
        lost=len(missing - waiting - held),
        queued=len(still),
        held=len(missing & held),
        unexpected=len(copies.keys() - due.alerts),
        duplicated=sum(len(found) - 1 for found in repeated.values()),
        recognisable=sum(
            len(found) - 1
            for found in repeated.values()
            if found[0].ident is not None and len({m.ident for m in found}) == 1
        ),
        messages=dict(counts),
        latencies=dict(latencies),
        owed_on=_per_channel(due.alerts),
        queued_on=_per_channel(still),
    )


def _per_channel(alerts: Iterable[Alert]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for channel, _, _ in alerts:
        counts[channel] += 1
    return dict(counts)
