"""The soak benchmark's figures as one Markdown table, each with its target."""

from __future__ import annotations

import platform
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent import retention
from bench import soak_setup

if TYPE_CHECKING:
    from bench.soak import Run
    from bench.soak_probe import Sample

MIB = 1024 * 1024
#: The outbox states retention deletes (``agent.retention.FINAL``).
FINAL = frozenset(status.value for status in retention.FINAL)
#: A worker's resident set may grow this much after warm-up (a leak grows with traffic).
MEMORY_SHARE = 0.10
#: The outbox and event tables may grow this much once retention is pruning (plus a
#: little, since a table grows by whole pages and a tiny run has only a few).
TABLES_SHARE = 0.25
TABLES_SLACK = 1 * 1024 * 1024


@dataclass(frozen=True)
class Row:
    """One figure: what it is, what was measured, the target, and whether it was met."""

    figure: str
    measured: str
    target: str
    ok: bool | None = None

    def cells(self) -> tuple[str, str, str, str]:
        """The row's cells; a figure without a target has no verdict."""
        mark = "" if self.ok is None else ("✅ pass" if self.ok else "❌ fail")
        return (self.figure, self.measured, self.target, mark)


def render(run: Run) -> str:
    """The report: the setting, the table, and what each figure means."""
    rows = [*_alerts(run), *_memory(run), *_database(run)]
    s = run.settings
    lines = [
        f"Python {platform.python_version()}, PostgreSQL {run.server_version} "
        f"(fsync {'on' if s.fsync else 'off'}), {s.workers} × `smart-agent {run.command}`, "
        f"{s.subscriptions:,} subscriptions, {s.rate:,.0f} items/hour for {s.minutes:g} min "
        f"({len(run.seen):,} items), poll every {s.poll:g} s, keep_deliveries = keep_events = "
        f"{s.keep:g} s, purge_every {s.purge_every:g} s, seed {s.seed}. {_machine(run)}",
        "",
        "| figure | measured | target | |",
        "|---|---|---|---|",
        *("| " + " | ".join(row.cells()) + " |" for row in rows),
    ]
    return "\n".join(lines)


def passed(run: Run) -> bool:
    """Whether every figure with a target met it."""
    return all(row.ok is not False for row in [*_alerts(run), *_memory(run), *_database(run)])


def _alerts(run: Run) -> list[Row]:
    ledger = run.ledger
    messages = ", ".join(f"{name} {ledger.messages.get(c, 0):,}" for c, name in _CHANNELS)
    queued = ", ".join(f"{name} {ledger.queued_on.get(c, 0):,}" for c, name in _CHANNELS)
    made = run.made
    return [
        *(_latency(run, channel, name) for channel, name in _CHANNELS),
        Row("alerts lost", f"{ledger.lost:,} of {ledger.owed:,} owed", "0", ledger.lost == 0),
        Row(
            "alerts duplicated",
            f"{ledger.duplicated:,} ({ledger.recognisable:,} recognisable)",
            "0 without kills" if not run.kills else "each recognisable",
            ledger.duplicated == (ledger.recognisable if run.kills else 0),
        ),
        Row(
            "alerts still queued at the end",
            f"{ledger.queued:,} ({queued})",
            "0",
            ledger.queued == 0,
        ),
        Row(
            "alerts held for the digest by the hourly cap",
            f"{ledger.held:,}",
            "(sent at the digest hour)",
        ),
        Row("alerts arrived but not owed", f"{ledger.unexpected:,}", "0", ledger.unexpected == 0),
        Row(
            "deliveries made (rows queued, feeds included)",
            f"{made:,} (matcher owes {ledger.owed_deliveries:,})",
            "= owed",
            made == ledger.owed_deliveries,
        ),
        Row("messages accepted", f"{messages}; Telegram 429s {run.flooded:,}", ""),
        Row("errors in the workers' logs", f"{run.log_errors:,}", "0", run.log_errors == 0),
    ]


_CHANNELS = (("email", "e-mail"), ("telegram", "Telegram"))
#: Messages a second a channel accepts from one sender, where it has a limit.
CAPACITY = {"telegram": soak_setup.TELEGRAM_PER_SECOND}


def _latency(run: Run, channel: str, name: str) -> Row:
    """One channel's latency, judged unless the run owes it more than it may carry."""
    poll, ledger = run.settings.poll, run.ledger
    p50_target, p95_target = poll / 2 + 30, poll + 120
    p50, p95 = ledger.latency(0.5, channel), ledger.latency(0.95, channel)
    target = f"p50 ≤ {p50_target:g} s, p95 ≤ {p95_target:g} s"
    ok: bool | None = _le(p50, p50_target) and _le(p95, p95_target)
    owed = ledger.owed_on.get(channel, 0) / (run.settings.minutes * 60)
    limit = CAPACITY.get(channel)
    if limit is not None and owed > limit:
        # Nothing the workers do can meet it: the backlog grows by the difference.
        target += (
            f"; not judged: {owed:.0f} alerts a second owed, {name} takes "
            f"{limit} messages a second from one bot"
        )
        ok = None
    return Row(f"{name} latency, visible → accepted", f"p50 {_s(p50)}, p95 {_s(p95)}", target, ok)


def _memory(run: Run) -> list[Row]:
    rows = []
    for worker in range(run.settings.workers):
        if worker == 0 and run.kills:
            rows.append(Row("worker 1 RSS", "killed and restarted: not compared", ""))
            continue
        warm, end = _at(run.samples, run.warm, worker), _last(run.samples, run.end, worker)
        if warm is None or end is None:
            rows.append(Row(f"worker {worker + 1} RSS", "not measured (it exited)", "", False))
            continue
        growth = end - warm
        rows.append(
            Row(
                f"worker {worker + 1} RSS growth after warm-up",
                f"{growth / MIB:+.1f} MiB ({warm / MIB:.0f} → {end / MIB:.0f} MiB)",
                f"≤ {MEMORY_SHARE:.0%} of {warm / MIB:.0f} MiB",
                growth <= MEMORY_SHARE * warm,
            )
        )
    return rows


def _database(run: Run) -> list[Row]:
    samples = run.samples
    first = next(s for s in samples if s.t >= run.start)
    last = max((s for s in samples if s.t <= run.drained), key=lambda s: s.t)
    steady = next((s for s in samples if s.t >= run.steady), last)
    peak = max(s.db_bytes for s in samples)
    made = max(s.newest_delivery for s in samples if s.t <= last.t) - steady.newest_delivery
    grown = last.db_bytes - steady.db_bytes
    items = last.item_bytes - steady.item_bytes
    per = 1e5 / made if made else 0.0
    final = sum(n for state, n in last.outbox.items() if state in FINAL)
    bound = run.settings.rate / 3600 * run.per_item * (run.settings.keep + run.settings.purge_every)
    return [
        Row(
            "DB size at start / peak / end",
            f"{_mib(first.db_bytes)} / {_mib(peak)} / {_mib(last.db_bytes)}",
            "bounded (retention on)",
        ),
        _tables(run, steady, last),
        Row(
            "DB growth per 10⁵ deliveries, once retention prunes",
            f"{grown * per / MIB:+.1f} MiB, of which items {items * per / MIB:+.1f} MiB"
            if made
            else "–",
            "items only (kept by design)",
        ),
        Row(
            "sent (final) deliveries kept at the end",
            f"{final:,}",
            f"≤ {bound:,.0f} (rate × deliveries/item × (keep + purge))",
            final <= bound,
        ),
        Row(
            "rows at the end: waiting / held / events / items",
            f"{last.waiting:,} / {last.outbox.get('held', 0):,} / {last.events:,} / {last.items:,}",
            "",
        ),
    ]


def _tables(run: Run, steady: Sample, last: Sample) -> Row:
    """The outbox and event tables against the most rows they had to hold at once.

    PostgreSQL keeps a table's pages once it has them (deleted rows' space is
    reused, not given back), so the tables are judged against the most rows
    they held at once after retention began (alerts waiting for a channel or
    held for a digest, sent rows within ``keep_deliveries``, their events), at
    the bytes a row they took then: a table that grew beyond its rows is one
    whose deleted rows' space was never reused.
    """
    before = steady.event_bytes + steady.delivery_bytes
    after = last.event_bytes + last.delivery_bytes
    rows = [s.deliveries + s.events for s in run.samples if steady.t <= s.t <= last.t]
    start, peak = steady.deliveries + steady.events, max(rows, default=0)
    bound = (1 + TABLES_SHARE) * before * max(peak, 1) / max(start, 1) + TABLES_SLACK
    return Row(
        "outbox + events tables, once retention prunes → end",
        f"{_mib(before)} → {_mib(after)} (rows: {start:,}, at most {peak:,})",
        f"≤ {_mib(int(bound))}: the most rows held at once, at the start's bytes a row "
        f"(+{TABLES_SHARE:.0%}, + 1 MiB)",
        after <= bound,
    )


def _machine(run: Run) -> str:
    """The workers' CPU use and the machine's load over the replay: what the figures cost."""
    during = [s for s in run.samples if run.start <= s.t <= run.end]
    if len(during) < 2:
        return ""
    first, last = during[0], during[-1]
    span = last.t - first.t
    used = [
        f"{(b - a) / span:.0%}" if a is not None and b is not None else "–"
        for a, b in zip(first.cpu, last.cpu, strict=True)
    ]
    load = sum(s.load for s in during) / len(during)
    return (
        f"Over the replay the workers used {', '.join(used)} of a core each, and the "
        f"machine's load average (2 cores) was {load:.1f}."
    )


def _at(samples: Sequence[Sample], t: float, worker: int) -> int | None:
    """A worker's RSS in the first sample at or after ``t``."""
    return next((s.rss[worker] for s in samples if s.t >= t), None)


def _last(samples: Sequence[Sample], t: float, worker: int) -> int | None:
    """A worker's RSS in the last sample at or before ``t``."""
    found = [s.rss[worker] for s in samples if s.t <= t and s.rss[worker] is not None]
    return found[-1] if found else None


def _le(value: float | None, limit: float) -> bool:
    return value is not None and value <= limit


def _s(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds:.1f} s"


def _mib(size: int) -> str:
    return f"{size / MIB:.1f} MiB"
