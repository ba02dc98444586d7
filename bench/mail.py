"""Benchmark: e-mail alerts per second, pooled connections against one per message.

Run from the repository root::

    .venv/bin/python bench/mail.py [--messages 2000] [--pool-size 4] [--quick]

Every message is a realistic alert (a generated tender from the fixtures' real
Hebrew vocabulary and publishers, with its "why" line), rendered by the real
``Renderer`` in Hebrew, Arabic or English in turn, built into MIME and sent to
an aiosmtpd server in another process (``bench/smtp_sink.py``), two ways, in
one run:

* **pool**: ``EmailNotifier`` entered, its ``pool_size`` connections kept open;
* **per message**: ``aiosmtplib.send`` for each message, opening and closing a
  connection each time (how every message was sent before the pool).

Both ways run against two servers: **plain** SMTP, and **STARTTLS + login**,
as a mail provider's submission port (587) requires (a certificate made with
``openssl`` for the run, trusted through ``ca_file``). Each with one sender
(as a dispatcher sending one group at a time) and with as many concurrent
senders as the pool has connections. The targets (issue #10): at least 300
messages/s with the pool, and at least twice the per-message figure with the
same number of senders, judged on the STARTTLS + login server. Each figure
is the fastest of ``--passes`` timed passes (3), as other load on the machine
only slows a pass down; the per-message sends over TLS (about 25 a second)
are timed on the first 500 messages.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: import the project from the repository root.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import os
import platform
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from enum import StrEnum

import aiosmtplib
from pydantic import SecretStr

from agent.models import Event
from agent.rendering import BUILTIN_TEMPLATES, Alert, Recipient, Renderer
from bench import smtp_sink
from bench.smtp_sink import Server
from bench.vocab import load_corpus
from bench.workload import Workload
from notifiers.base import Message
from notifiers.email import EmailNotifier

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "data" / "budgetkey"
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
LANGUAGES = ("he", "ar", "en")
TARGET_RATE = 300.0
TARGET_RATIO = 2.0
#: Messages rendered and sent before timing: templates compiled, connections warm.
WARM_UP = 20
#: Timed passes of each way; the fastest counts (other load only slows a pass down).
PASSES = 3
#: At most this many messages per pass for the per-message sends over TLS (about
#: 25 a second: each opens a connection, a TLS session and a login).
SLOW_WORK = 500


@dataclass(frozen=True)
class Job:
    """One message to render and send."""

    recipient: Recipient
    alert: Alert


class Setup(StrEnum):
    """The server the messages go to."""

    PLAIN = "plain"
    STARTTLS_LOGIN = "STARTTLS + login"


#: The login the STARTTLS server asks for.
LOGIN = ("alerts", "bench-password")


@dataclass(frozen=True)
class Row:
    """The two ways measured on one server with one number of concurrent senders."""

    setup: Setup
    senders: int
    pool: float
    per_message: float

    @property
    def ratio(self) -> float:
        """How many times faster the pool is."""
        return self.pool / self.per_message


def jobs(count: int, seed: int) -> list[Job]:
    """``count`` alerts for ``count`` subscribers, the languages in turn."""
    events = Workload(load_corpus(FIXTURES), seed).events(count, NOW)
    return [_job(n, event) for n, event in enumerate(events)]


def _job(n: int, event: Event) -> Job:
    word = event.item.title.split()[0]
    reasons = [{"clause": word, "field": "title", "term": word, "matched": word}]
    language = LANGUAGES[n % len(LANGUAGES)]
    recipient = Recipient(
        subscription_name=f"מינוי {n}",
        address=f"reader{n}@ngo.example",
        language=language,
        feed_url=f"https://alerts.example.org/feeds/token{n}.xml",
        unsubscribe_url=f"https://alerts.example.org/unsubscribe/sub{n:018d}.1798675200.{n:032x}",
        manage_url=f"https://alerts.example.org/manage/sub{n:018d}.1798675200.{n:032x}",
        public_id=f"sub{n:019d}",
    )
    alert = Alert(n, event, reasons, NOW - timedelta(minutes=5), f"token-{n}")
    return Job(recipient, alert)


class Sender:
    """Renders each job and sends it: through the pool, or a connection per message."""

    def __init__(self, server: Server, pool_size: int) -> None:
        self.renderer = Renderer(BUILTIN_TEMPLATES, mail_domain="alerts.example.org")
        tls = server.ca_file is not None
        self.notifier = EmailNotifier(
            host="127.0.0.1",
            port=server.port,
            pool_size=pool_size,
            from_address="Alerts <alerts@example.org>",
            starttls=tls,
            ca_file=server.ca_file,
            username=LOGIN[0] if tls else None,
            password=SecretStr(LOGIN[1]) if tls else None,
        )
        #: Messages the server accepted, both ways, warm-ups included.
        self.sent = 0

    def render(self, job: Job) -> Message:
        """Render one job's message (the work both ways share)."""
        [out] = self.renderer.render("email", job.recipient, [job.alert], now=NOW)
        return out.message

    async def pooled(self, job: Job) -> None:
        """Render and send through the entered notifier's pool."""
        await self.notifier.send(self.render(job))
        self.sent += 1

    async def per_message(self, job: Job) -> None:
        """Render, build and send with ``aiosmtplib.send``: a connection for this message."""
        message = self.render(job)
        notifier = self.notifier
        await aiosmtplib.send(
            notifier.wire(message),
            sender=parseaddr(notifier.from_address)[1],
            recipients=[message.to],
            hostname=notifier.host,
            port=notifier.port,
            username=notifier.username,
            password=notifier.password.get_secret_value() if notifier.password else None,
            start_tls=notifier.starttls,
            cert_bundle=str(notifier.ca_file) if notifier.ca_file else None,
            timeout=notifier.timeout,
        )
        self.sent += 1


async def timed(work: Sequence[Job], send: Callable[[Job], Awaitable[None]], senders: int) -> float:
    """Messages per second for ``work`` sent by ``senders`` concurrent tasks."""
    queue = iter(work)

    async def worker() -> None:
        for job in queue:
            await send(job)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(senders)))
    return len(work) / (time.perf_counter() - started)


async def measure(
    setup: Setup, sender: Sender, work: Sequence[Job], levels: Sequence[int], passes: int
) -> list[Row]:
    """Both ways at each number of senders, after a warm-up of each; the fastest pass."""
    rows = []
    slow = work if setup is Setup.PLAIN else work[:SLOW_WORK]
    async with sender.notifier:
        await timed(work[:WARM_UP], sender.pooled, max(levels))
        for senders in levels:
            await timed(work[:WARM_UP], sender.per_message, senders)
            pool, per_message = 0.0, 0.0
            for _ in range(passes):
                pool = max(pool, await timed(work, sender.pooled, senders))
                per_message = max(per_message, await timed(slow, sender.per_message, senders))
            rows.append(Row(setup, senders, pool, per_message))
    return rows


def rendering_rate(sender: Sender, work: Sequence[Job]) -> float:
    """Messages per second for rendering alone: the ceiling of both ways."""
    started = time.perf_counter()
    for job in work:
        sender.render(job)
    return len(work) / (time.perf_counter() - started)


def report(rows: Sequence[Row], render_rate: float, count: int, pool_size: int, passes: int) -> str:
    """The Markdown table and the verdicts on the targets."""
    slow = min(count, SLOW_WORK)
    lines = [
        f"E-mail: {count:,} messages a pass ({slow:,} for the per-message sends over TLS), "
        f"the fastest of {passes} pass(es); each message rendered (he/ar/en in turn) and "
        f"sent to aiosmtpd in another process; Python {platform.python_version()}, "
        f"{_cpus()} CPUs; rendering alone: {render_rate:,.0f} messages/s.",
        "",
        f"| server | senders at once | pool of {pool_size} connections, msg/s | "
        "`aiosmtplib.send`, a connection per message, msg/s | pool ÷ per message |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {row.setup} | {row.senders} | {row.pool:,.0f} | {row.per_message:,.0f} "
        f"| {row.ratio:.1f}× |"
        for row in rows
    ]
    lines.append("")
    for setup in Setup:
        judged = [row for row in rows if row.setup is setup]
        if not judged:
            continue
        best = max(judged, key=lambda row: row.pool)
        note = " (the target)" if setup is Setup.STARTTLS_LOGIN else ""
        lines += [
            f"- {setup}{note}: ≥ {TARGET_RATE:.0f} messages/s with the pool: {best.pool:,.0f} "
            f"({best.senders} senders) — {_verdict(best.pool >= TARGET_RATE)}; "
            f"≥ {TARGET_RATIO:.0f}× the per-message sends: {best.ratio:.1f}× — "
            f"{_verdict(best.ratio >= TARGET_RATIO)}",
        ]
    return "\n".join(lines)


def _verdict(ok: bool) -> str:
    return "✅ pass" if ok else "❌ fail"


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the table; exit 1 if a message went missing."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, help="messages per run (default 2,000)")
    parser.add_argument("--pool-size", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="200 messages, one pass")
    parser.add_argument("--passes", type=int, help=f"timed passes (default {PASSES})")
    parser.add_argument("--seed", type=int, default=20261123)
    args = parser.parse_args(argv)
    passes = args.passes or (1 if args.quick else PASSES)
    count = args.messages or (200 if args.quick else 2000)
    work = jobs(count, args.seed)
    levels = sorted({1, args.pool_size})
    rows: list[Row] = []
    render_rate = 0.0
    lost = []
    for setup in Setup:
        login = LOGIN if setup is Setup.STARTTLS_LOGIN else None
        with smtp_sink.running(login) as server:
            sender = Sender(server, args.pool_size)
            render_rate = max(render_rate, rendering_rate(sender, work))
            rows += asyncio.run(measure(setup, sender, work, levels, passes))
            received, connections = server.count()
        print(
            f"{setup}: the server received {received:,} of the {sender.sent:,} messages sent "
            f"(warm-ups included) over {connections:,} connections.",
            file=sys.stderr,
        )
        if received != sender.sent:
            lost.append(setup)
    print(report(rows, render_rate, count, args.pool_size, passes))
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
