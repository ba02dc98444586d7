"""Benchmark: one item against 10³–10⁶ subscription rules, three ways, side by side.

Run from the repository root::

    .venv/bin/python bench/match.py [--sizes 1000,10000,100000,1000000] [--items N] [--quick]

It compares our engine (``agent.rules.Engine.match``: a two-key presearch index, then
exact verification), the naive loop that checks every rule (``agent.rules.evaluate.check``),
and the Budget Key way (one SQLite FTS5 query per saved search over an index of the batch of
new items), prints the figures as a Markdown table and writes them to ``bench/results.md``.
The workload is generated from the real Hebrew vocabulary in the fixtures
(``bench/workload.py``).
"""

from __future__ import annotations

import argparse
import gc
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: make ``bench`` importable from the repository root.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.models import Event
from agent.rules import Engine, Match, document_frequency
from bench import engines, report
from bench.fts import Fts5Baseline, supports_fts5
from bench.vocab import Corpus, load_corpus
from bench.workload import Workload

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "data" / "budgetkey"
#: The fixed "now" every item and rule is generated and matched at.
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
DEFAULT_SIZES = (1_000, 10_000, 100_000, 1_000_000)
QUICK_SIZES = (1_000, 10_000)
#: Rule evaluations the naive loop and FTS5 may spend per size: 20 items at 10⁵, 5 at 10⁶.
SLOW_BUDGET = 2_000_000
MIN_SLOW_ITEMS = 5
#: Rule evaluations for ``match_brute_force``, which analyses the event again for every
#: rule (about 0.15 ms each): 50 items at 10³, 5 at 10⁴, one at 10⁵ and 10⁶.
BRUTE_BUDGET = 50_000
#: A typical poll's batch of new items, for the FTS5 baseline's second figure.
POLL_BATCH = 20
#: Items whose candidate counts are read from ``Engine.stats`` (untimed).
CANDIDATE_SAMPLE = 50
#: Items of "history" the engine learns word rarity from, as the service does.
HISTORY = 500
#: Items of that history matched once before timing, as a running service has.
WARM_UP = 100
#: Timed passes of the engine over the items; the fastest counts (see ``engines.run``).
PASSES = 3


@dataclass(frozen=True)
class Settings:
    """What to measure: sizes, items per size, seed, and where to write the report."""

    sizes: tuple[int, ...]
    items: int
    seed: int
    output: Path
    fixtures: Path = FIXTURES
    now: datetime = NOW


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark from command-line arguments; print and write the report."""
    settings = _parse(argv)
    if not supports_fts5():
        print("this Python's sqlite3 has no FTS5; the baseline cannot run", file=sys.stderr)
        return 1
    corpus = load_corpus(settings.fixtures)
    results = [measure(size, corpus, settings) for size in settings.sizes]
    text = render(results, corpus, settings)
    print(text)
    settings.output.write_text(text + "\n", encoding="utf-8")
    return 0


def _parse(argv: Sequence[str] | None) -> Settings:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", help="comma-separated numbers of subscriptions")
    parser.add_argument("--items", type=int, help="items matched per size (default 500)")
    parser.add_argument("--quick", action="store_true", help="10³ and 10⁴ only, 50 items")
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results.md")
    args = parser.parse_args(argv)
    sizes: tuple[int, ...] = QUICK_SIZES if args.quick else DEFAULT_SIZES
    if args.sizes:
        sizes = tuple(int(size.replace("_", "")) for size in args.sizes.split(","))
    items = args.items or (50 if args.quick else 500)
    return Settings(sizes=sizes, items=items, seed=args.seed, output=args.output)


def measure(size: int, corpus: Corpus, settings: Settings) -> report.SizeResult:
    """Measure the three ways (and the engine's own brute force) at ``size`` subscriptions."""
    started = time.perf_counter()
    workload = Workload(corpus, settings.seed)
    events = workload.events(settings.items, settings.now)
    drafts = workload.drafts(size)
    persisted = engines.persist([draft.query() for draft in drafts])
    _log(size, f"generated and compiled in {time.perf_counter() - started:.1f} s")
    # What the service learns from its newest stored items: how rare each word is.
    history = Workload(corpus, settings.seed + 1).events(HISTORY, settings.now)
    frequency = document_frequency(history, settings.now)
    cold = engines.cold_start(persisted, frequency)
    traced = engines.traced_size(persisted, frequency)
    _log(size, f"cold start {cold.seconds:.1f} s, {traced / engines.MIB:.0f} MiB")
    # A running service has seen items before: warm the analyser's word cache on
    # the history, not on the items that are measured.
    engines.run(cold.engine, history[:WARM_UP], settings.now, brute=False)
    gc.collect()
    runs = _match_all(cold.engine, persisted, Fts5Baseline(drafts), events, settings)
    per_1e5 = 100_000 / size / engines.MIB
    result = report.SizeResult(
        rules=size,
        distinct_rules=len(set(persisted)),
        engine=_figures(runs.engine),
        naive=_figures(runs.naive),
        brute=_figures(runs.brute),
        fts=_figures(runs.fts),
        fts_poll=_figures(runs.fts_poll),
        candidates=engines.mean_candidates(cold.engine, events[:CANDIDATE_SAMPLE], settings.now),
        fts_agree=sum(
            {m.rule_id for m in found} == {m.rule_id for m in hits}
            for found, hits in zip(runs.engine.results, runs.fts.results, strict=False)
        ),
        traced_mib_per_1e5=traced * per_1e5,
        rss_mib_per_1e5=cold.rss_growth * per_1e5,
        cold_start_s=cold.seconds,
        mismatches=_mismatches(runs),
    )
    del cold, persisted, drafts, runs
    gc.collect()
    _log(size, f"done in {time.perf_counter() - started:.1f} s")
    return result


@dataclass(frozen=True)
class _Runs:
    engine: engines.Run
    naive: engines.Run
    brute: engines.Run
    fts: engines.Run
    fts_poll: engines.Run


def _match_all(
    engine: Engine,
    persisted: Sequence[str],
    baseline: Fts5Baseline,
    events: Sequence[Event],
    settings: Settings,
) -> _Runs:
    """Match the events every way; the slow ways see only the first few."""
    now, size = settings.now, len(persisted)
    fast = engines.run(engine, events, now, brute=False, passes=PASSES)
    slow_events = events[: _slow_items(size, settings.items, SLOW_BUDGET, MIN_SLOW_ITEMS)]
    naive = engines.run_naive(engines.load_nodes(persisted), slow_events, now)
    brute_events = events[: _slow_items(size, settings.items, BRUTE_BUDGET, 1)]
    brute = engines.run(engine, brute_events, now, brute=True)
    _log(size, f"engine {fast.items_per_second:,.0f}/s, naive {naive.items_per_second:,.1f}/s")
    fts = _run_fts(baseline, events, now)
    fts_poll = _run_fts(baseline, events[:POLL_BATCH], now)
    return _Runs(fast, naive, brute, fts, fts_poll)


def _run_fts(baseline: Fts5Baseline, events: Sequence[Event], now: datetime) -> engines.Run:
    """Match ``events`` as one batch: one FTS5 table, one query per rule."""
    start = time.perf_counter()
    hits = baseline.match(events, now)
    seconds = time.perf_counter() - start
    # Only the rule ids are compared; FTS5 cannot say why a rule matched.
    return engines.Run([[Match(rule_id, ()) for rule_id in found] for found in hits], seconds)


def _figures(run: engines.Run) -> report.Figures:
    return report.Figures(
        len(run.results), run.items_per_second, run.matches_per_item, run.slowest_items_per_second
    )


def _mismatches(runs: _Runs) -> int:
    """Count items where the engine differs from the naive loop or the brute force."""
    fast, naive, brute = runs.engine, runs.naive, runs.brute
    return sum(
        fast.results[i] != naive.results[i]
        or (i < len(brute.results) and fast.results[i] != brute.results[i])
        for i in range(len(naive.results))
    )


def _slow_items(size: int, items: int, budget: int, least: int) -> int:
    return min(items, max(least, budget // size))


def _log(size: int, message: str) -> None:
    print(f"[{size:,} rules] {message}", file=sys.stderr, flush=True)


def render(results: Sequence[report.SizeResult], corpus: Corpus, settings: Settings) -> str:
    """Write the whole report: setting, table, targets and how to read them."""
    return "\n".join(
        [
            "# Matching benchmark: subscription rules against new items",
            "",
            f"Python {platform.python_version()} on {_cpu()}, one core, one process. "
            f"Seed {settings.seed}. Vocabulary: {len(corpus.words):,} real Hebrew words and "
            f"{len(corpus.publishers)} real publishers from the Budget Key fixtures. "
            "Items: ~120 tokens, 25 % with a Hebrew prefix, event `new`. "
            "Rules: the narrow mix of performance.md §5.2 (`bench/workload.py`).",
            "",
            report.table(results),
            "",
            "## Targets",
            "",
            report.targets(results),
            "",
            "## How to read it",
            "",
            report.notes(results, CANDIDATE_SAMPLE, PASSES),
        ]
    )


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    sys.exit(main())
