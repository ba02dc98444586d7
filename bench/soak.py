"""Soak benchmark: many workers on PostgreSQL, recorded items replayed for a fixed time.

Run from the repository root::

    .venv/bin/python -m bench.soak [--minutes 10] [--subscriptions 100000] [--rate 10000] \
        [--workers 2]

A throwaway PostgreSQL gets ``smart-agent init`` and the subscriptions
(``bench.soak_setup``). A fake Budget Key replays recorded documents at
``--rate`` items an hour (``bench.soak_plan``, ``bench.soak_source``); an SMTP
server and the Telegram fake log every message they accept
(``bench.soak_sinks``); ``--workers`` real ``smart-agent worker`` processes
(``serve``, each on its own port, where ``worker`` does not exist yet) share
the database, polling every ``--poll`` seconds (short, so that latency shows
the pipeline rather than the interval) with retention windows short enough to
prune several times within the run. A probe samples memory and the database
(``bench.soak_probe``). After the replay the workers get ``--drain`` seconds
at most to send what is queued; then the ledger (``bench.soak_ledger``)
compares what arrived with what the agent's own matcher says was owed, and
the report (``bench.soak_report``) prints one table, each figure with its target.
With ``--kill``, worker 1 is killed (SIGKILL) halfway and started again: what it
was sending goes again once its lease (30 s then) ends, and every duplicate
must be recognisable (the same Message-ID, or the same Telegram reference).

Ten minutes by default: at 10⁴ items an hour that is about 1,700 items and
10⁵ deliveries, so "per 10⁵ deliveries" is measured, not extrapolated; the
outbox reaches its steady size (keep + purge interval = 3 min) well before
the end, and the workers' memory is compared over the 8 minutes after warm-up.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench import soak_children, soak_ledger, soak_plan, soak_probe, soak_report, soak_setup
from bench.soak_ledger import Ledger
from bench.soak_probe import Probe, Sample

#: The share of the replay the workers get to warm up before memory is compared.
WARM_UP = 0.2
#: The shortest ``keep_deliveries`` and ``keep_events``, seconds (two probe intervals).
MIN_KEEP = 10
#: ``delivery_lease`` with ``--kill``, seconds.
KILL_LEASE = 30


@dataclass(frozen=True)
class Settings:
    """What to run; durations in seconds."""

    minutes: float = 10
    subscriptions: int = 100_000
    rate: float = 10_000
    workers: int = 2
    poll: float = 10
    keep: float = 120
    purge_every: float = 60
    dispatch_every: float = 5
    drain: float = 600
    fsync: bool = True
    kill: bool = False
    command: str = "auto"
    seed: int = 20261201
    markdown: Path | None = None
    folder: Path | None = None


@dataclass
class Run:
    """Everything one run observed."""

    settings: Settings
    command: str
    server_version: str
    seen: dict[str, float]
    ledger: Ledger
    samples: list[Sample]
    start: float
    warm: float
    end: float
    drained: float
    flooded: int
    log_errors: int
    kills: int

    @property
    def steady(self) -> float:
        """From when retention has pruned at least once."""
        return self.start + self.settings.keep + self.settings.purge_every

    @property
    def made(self) -> int:
        """Deliveries queued during the run (delivery ids are never reused).

        Counted from the first sample, taken after the silent baseline and
        before the replay, to the highest id any sample saw: retention may
        delete the newest rows before the last sample, but never within one
        sampling interval of their making (``keep`` is longer).
        """
        newest = max(s.newest_delivery for s in self.samples)
        return newest - self.samples[0].newest_delivery

    @property
    def per_item(self) -> float:
        """Deliveries the matcher owes per replayed item."""
        return self.ledger.owed_deliveries / max(len(self.seen), 1)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark from command-line arguments and print the table."""
    settings = _parse(argv)
    if settings.folder is not None:
        settings.folder.mkdir(parents=True, exist_ok=True)
        run = soak(settings, settings.folder)
    else:
        with tempfile.TemporaryDirectory(prefix="soak-") as folder:
            run = soak(settings, Path(folder))
    text = soak_report.render(run)
    print(text, flush=True)
    if settings.markdown is not None:
        settings.markdown.write_text(text + "\n", encoding="utf-8")
    return 0 if soak_report.passed(run) else 1


def _parse(argv: Sequence[str] | None) -> Settings:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    arg = parser.add_argument
    arg("--minutes", type=float, default=10, help="how long items are replayed (10)")
    arg("--subscriptions", type=_count, default=100_000, help="(100,000)")
    arg("--rate", type=_count, default=10_000, help="items an hour (10,000)")
    arg("--workers", type=int, default=2, help="worker processes (2)")
    arg("--poll", type=float, default=10, help="seconds between polls of a source (10)")
    arg(
        "--keep",
        type=float,
        help="keep_deliveries and keep_events, s (default: a fifth of the run)",
    )
    arg("--purge-every", type=float, help="s (default: half of --keep)")
    arg("--drain", type=float, default=600, help="seconds to send what is queued at the end")
    arg("--no-fsync", action="store_true", help="PostgreSQL without fsync (faster, less real)")
    arg("--kill", action="store_true", help="kill worker 1 (SIGKILL) halfway and restart it")
    arg("--command", choices=["auto", "worker", "serve"], default="auto")
    arg("--seed", type=int, default=20261201)
    arg("--markdown", type=Path, help="also write the table to this file")
    arg("--folder", type=Path, help="keep the logs here (default: a temporary folder)")
    args = parser.parse_args(argv)
    # At least two sampling intervals, so that no row is made and pruned unseen.
    keep = max(args.keep or args.minutes * 60 / 5, MIN_KEEP)
    return Settings(
        minutes=args.minutes,
        subscriptions=args.subscriptions,
        rate=args.rate,
        workers=max(args.workers, 1),
        poll=args.poll,
        keep=keep,
        purge_every=args.purge_every or keep / 2,
        drain=args.drain,
        fsync=not args.no_fsync,
        kill=args.kill,
        command=args.command,
        seed=args.seed,
        markdown=args.markdown,
        folder=args.folder,
    )


def _count(text: str) -> int:
    return int(float(text.replace("_", "").replace(",", "")))


def soak(settings: Settings, folder: Path) -> Run:
    """Set the stage in ``folder``, replay, drain, and settle the ledger."""
    plan = soak_plan.make(settings.rate, settings.minutes * 60, settings.seed)
    soak_plan.save(plan, folder / "plan.json")
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(soak_setup.postgres(fsync=settings.fsync))
        stderr = stack.enter_context((folder / "children.log").open("w", encoding="utf-8"))
        smtp, bot, source = (
            stack.enter_context(soak_children.child(module, *args, stderr=stderr))
            for module, *args in (
                ("bench.soak_sinks", "smtp", str(folder / "smtp.jsonl")),
                ("bench.soak_sinks", "telegram", str(folder / "telegram.jsonl")),
                ("bench.soak_source", str(folder / "plan.json"), str(folder / "visible.jsonl")),
            )
        )
        # After a kill, what the dead worker was sending goes again once its lease ends:
        # a short lease lets that happen within the run.
        lease = KILL_LEASE if settings.kill else None
        timing = soak_setup.Timing(
            settings.poll, settings.dispatch_every, settings.keep, settings.purge_every, lease
        )
        ports = {"smtp": smtp.port, "bot": bot.port, "source": source.port}
        config = soak_setup.config(
            folder, database_url=url, timing=timing, workers=settings.workers, **ports
        )
        _log(f"PostgreSQL at {url}; ports {ports}")
        soak_setup.smart_agent(config, "init")
        started = time.perf_counter()
        soak_setup.subscribe(url, settings.subscriptions, seed=settings.seed, now=datetime.now(UTC))
        took = time.perf_counter() - started
        _log(f"{settings.subscriptions:,} subscriptions stored in {took:.0f} s")
        command = settings.command
        if command == "auto":
            command = "worker" if soak_children.has_worker() else "serve"
        workers = stack.enter_context(soak_children.workers(config, command, settings.workers))
        marks, kills, probe = _replay(settings, url, workers, source)
        base = soak_setup.source_url(source.port)
        seen = soak_ledger.visible(folder / "visible.jsonl")
        owed, waiting, held = soak_ledger.from_database(url, plan, seen, base)
        version = soak_setup.server_version(url)
        workers.stop()
        flooded = int(_last_json(bot.stop()).get("flooded", 0))
    messages = [
        *soak_ledger.arrivals("email", folder / "smtp.jsonl", base),
        *soak_ledger.arrivals("telegram", folder / "telegram.jsonl", base),
    ]
    ledger = soak_ledger.settle(owed, messages, seen, waiting, held)
    start, warm, end, drained = marks
    errors = soak_children.errors([*folder.glob("worker-*.log"), folder / "children.log"])
    return Run(
        settings, command, version, seen, ledger, probe.samples, start, warm, end, drained,
        flooded, errors, kills,
    )  # fmt: skip


def _replay(
    settings: Settings, url: str, workers: soak_children.Workers, source: soak_children.Child
) -> tuple[tuple[float, float, float, float], int, Probe]:
    """Wait for the baseline, replay for the set time, then drain; return the marks."""
    soak_probe.wait_for_baseline(url, len(soak_plan.DOC_TYPES), timeout=600)
    probe = Probe(url, workers.pids)
    probe.start()
    # Two more intervals: every worker has polled and loaded its matcher.
    time.sleep(2 * settings.poll)
    start = time.time()
    source.say("go")
    _log(f"replaying {settings.rate:,.0f} items/hour for {settings.minutes:g} min")
    warm = start + WARM_UP * settings.minutes * 60
    end = start + settings.minutes * 60
    kills = 0
    if settings.kill:
        _sleep_until(start + settings.minutes * 30)
        workers.kill(0)
        kills = 1
        _log("worker 1 killed and restarted")
    for minute in range(1, int(settings.minutes) + 1):
        _sleep_until(start + minute * 60)
        _progress(probe.latest())
    _sleep_until(end)
    # The last items still have to be polled; then whatever is queued, sent.
    _sleep_until(end + settings.poll + settings.dispatch_every)
    told = time.time()
    while time.time() < end + settings.drain:
        latest = probe.latest()
        if latest is not None and latest.t > end + settings.poll and latest.waiting == 0:
            break
        if time.time() - told >= 60:
            told = time.time()
            _progress(latest)
        time.sleep(probe.every)
    drained = time.time()
    probe.stop()
    _progress(probe.latest())
    return (start, warm, end, drained), kills, probe


def _sleep_until(when: float) -> None:
    time.sleep(max(0.0, when - time.time()))


def _progress(sample: Sample | None) -> None:
    if sample is not None:
        rss = ", ".join("–" if r is None else f"{r / 2**20:.0f}" for r in sample.rss)
        _log(
            f"deliveries {sample.newest_delivery:,} made, {sample.waiting:,} waiting, "
            f"{sample.outbox.get('held', 0):,} held; DB {sample.db_bytes / 2**20:.0f} MiB; "
            f"RSS {rss} MiB"
        )


def _last_json(output: str) -> dict[str, int]:
    lines = [line for line in output.splitlines() if line.startswith("{")]
    return dict(json.loads(lines[-1])) if lines else {}


def _log(message: str) -> None:
    print(f"[soak] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
