"""The fan-out benchmark's figures as a Markdown table, with the issue's target marked."""

from __future__ import annotations

import platform
import sqlite3
from typing import TYPE_CHECKING

from bench.fanout_db import Timed, mean_channels

if TYPE_CHECKING:
    from bench.fanout import Result

#: The issue's target: a poll's rows committed in at most this many seconds.
TARGET_SECONDS = 10.0

_COLUMNS = (
    "subscriptions",
    "new items → events",
    "rows committed",
    "indexing s (first `sync`, apart)",
    "poll s, fastest / slowest (batch → committed rows)",
    "poll rows/s",
    "same rows, one `enqueue` call: rows/s",
    "same rows, one INSERT per row: rows/s",
    "poll ÷ per row (one call ÷ per row)",
    f"poll ≤ {TARGET_SECONDS:.0f} s",
)


def passed(poll: Timed) -> bool:
    """Whether a poll committed its rows within the target."""
    return poll.error is None and poll.seconds <= TARGET_SECONDS


def render(result: Result, seed: int) -> str:
    """The report: the setting, one table row, the target line and any failure."""
    poll, slowest, at_once, per_row = (
        result.poll,
        result.slowest_poll,
        result.at_once,
        result.per_row,
    )
    cells = (
        f"{result.subscriptions:,}",
        f"{result.items:,} → {result.events:,}",
        f"{per_row.rows or at_once.rows or poll.rows:,}",
        f"{result.index_seconds:.1f}",
        _seconds(poll) if poll.error else f"{poll.seconds:.2f} / {slowest.seconds:.2f}",
        _rate(poll),
        _rate(at_once),
        _rate(per_row),
        f"{_ratio(poll, per_row)} ({_ratio(at_once, per_row)})",
        _mark(passed(poll)),
    )
    verdict = f"{poll.seconds:.1f} s" if poll.error is None else f"{_seconds(poll)} s"
    lines = [
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, seed {seed}, "
        f"fastest of {len(result.passes)} passes; channels email, telegram, rss "
        f"({mean_channels():.2f} a subscription).",
        "",
        "| " + " | ".join(_COLUMNS) + " |",
        "|" + "---|" * len(_COLUMNS),
        "| " + " | ".join(cells) + " |",
        "",
        f"- All rows of one poll of {result.items:,} new items against "
        f"{result.subscriptions:,} subscriptions committed in ≤ {TARGET_SECONDS:.0f} s: "
        f"{verdict} — {_mark(passed(poll))}",
    ]
    named = (("the poll", poll), ("one enqueue call", at_once), ("one INSERT per row", per_row))
    lines += [f"- {name} failed: {timed.error}" for name, timed in named if timed.error]
    return "\n".join(lines)


def _mark(ok: bool) -> str:
    return "✅ pass" if ok else "❌ fail"


def _seconds(timed: Timed) -> str:
    return f"{timed.seconds:.2f}" if timed.error is None else f"failed after {timed.seconds:.1f}"


def _rate(timed: Timed) -> str:
    rate = timed.rows_per_second
    return "failed" if rate is None else f"{rate:,.0f}"


def _ratio(timed: Timed, baseline: Timed) -> str:
    rate, base = timed.rows_per_second, baseline.rows_per_second
    return f"{rate / base:.1f}×" if rate is not None and base else "–"
