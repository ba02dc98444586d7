"""Our engine under the stopwatch: compile and persist rules, cold start, memory, matching.

Rules reach the engine the way they do in the service: compiled once from their query
string, persisted as JSON (``dump_node``), and at restart decoded, ``load_node``-ed and
``Engine.add``-ed one by one (``agent.matching.Matcher``). Memory is the growth of
``tracemalloc``'s traced total over one such build (every Python allocation the engine and
its rule trees keep, whatever the allocator does with freed arenas); the growth of the
process's resident set (psutil) during the timed build is reported beside it.
"""

from __future__ import annotations

import gc
import json
import time
import tracemalloc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import psutil

from agent.matching import quiet_gc
from agent.models import Event
from agent.rules import Engine, Match, Node, RuleSpec, dump_node, load_node
from agent.rules.evaluate import Context, check

MIB = 1024 * 1024


def persist(queries: Sequence[str]) -> list[str]:
    """Compile each query through ``RuleSpec`` and return its stored JSON text.

    Identical queries are compiled once (a real store keeps one row per subscription, but
    the text would be the same); the JSON strings are what a restart reads back.
    """
    cache: dict[str, str] = {}
    persisted = []
    for query in queries:
        text = cache.get(query)
        if text is None:
            node = RuleSpec(query=query).compile()
            text = cache[query] = json.dumps(dump_node(node), ensure_ascii=False)
        persisted.append(text)
    return persisted


def build(persisted: Sequence[str], frequency: Mapping[str, int] | None = None) -> Engine:
    """Do what a restart does (``agent.matching.Matcher``): decode, ``load_node`` and
    ``add`` every stored rule, with the collector paused and what was loaded frozen."""
    engine = Engine(frequency)
    with quiet_gc():
        for rule_id, text in enumerate(persisted):
            engine.add(rule_id, load_node(json.loads(text)))
    return engine


@dataclass(frozen=True)
class ColdStart:
    """A timed build and what it cost in memory."""

    engine: Engine
    seconds: float
    rss_growth: int


def cold_start(persisted: Sequence[str], frequency: Mapping[str, int] | None = None) -> ColdStart:
    """Build the engine from persisted rules, timing it and watching the resident set."""
    gc.collect()
    process = psutil.Process()
    before = process.memory_info().rss
    start = time.perf_counter()
    engine = build(persisted, frequency)
    seconds = time.perf_counter() - start
    gc.collect()
    return ColdStart(engine, seconds, process.memory_info().rss - before)


def traced_size(persisted: Sequence[str], frequency: Mapping[str, int] | None = None) -> int:
    """Return the bytes an engine built from ``persisted`` keeps, as tracemalloc counts them."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        engine = build(persisted, frequency)
        gc.collect()
        size = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    del engine
    return size


@dataclass(frozen=True)
class Run:
    """The results and timing of matching a list of events with one method."""

    results: list[list[Match]]
    #: The fastest pass over the events, and the slowest (several passes only).
    seconds: float
    slowest: float | None = None

    @property
    def items_per_second(self) -> float:
        """Events matched per second of wall time."""
        return len(self.results) / self.seconds if self.seconds else float("inf")

    @property
    def slowest_items_per_second(self) -> float | None:
        """Events matched per second in the slowest pass, when there were several."""
        return len(self.results) / self.slowest if self.slowest else None

    @property
    def matches_per_item(self) -> float:
        """Mean number of matching rules per event."""
        return sum(map(len, self.results)) / len(self.results) if self.results else 0.0


def run(
    engine: Engine, events: Sequence[Event], now: datetime, *, brute: bool, passes: int = 1
) -> Run:
    """Match every event with the engine's index, or with its every-rule loop.

    Each timed pass hands each result on and drops it, as the service does (it
    writes outbox rows); keeping hundreds of thousands of results alive would
    time the garbage collector walking them instead. An untimed last pass
    keeps the results for the comparisons. With several passes the fastest
    counts, as with ``timeit``: other load on a shared machine only ever
    slows a pass down.
    """
    match = engine.match_brute_force if brute else engine.match
    times = []
    for _ in range(passes):
        start = time.perf_counter()
        for event in events:
            match(event, now)
        times.append(time.perf_counter() - start)
    slowest = max(times) if passes > 1 else None
    return Run([match(event, now) for event in events], min(times), slowest)


def load_nodes(persisted: Sequence[str]) -> list[Node]:
    """Load one rule tree per rule, unshared, for the naive loop."""
    return [load_node(json.loads(text)) for text in persisted]


def run_naive(nodes: Sequence[Node], events: Sequence[Event], now: datetime) -> Run:
    """Check every rule against each event, analysing the event once (no index).

    ``Engine.match_brute_force`` calls ``evaluate`` per rule, which analyses the event again
    for every rule; this loop is the fairer naive baseline the speed-up target is held to.
    """
    start = time.perf_counter()
    results = []
    for event in events:
        context = Context(event, now)
        found = []
        for rule_id, node in enumerate(nodes):
            reasons = check(node, context)
            if reasons is not None:
                found.append(Match(rule_id, reasons))
        results.append(found)
    return Run(results, time.perf_counter() - start)


def mean_candidates(engine: Engine, events: Sequence[Event], now: datetime) -> float:
    """Mean number of candidate rules verified per event (``Engine.stats``), untimed."""
    counts = []
    for event in events:
        engine.match(event, now)
        stats = engine.stats()
        counts.append(next(v for k, v in stats.items() if "candidate" in k))
    return sum(counts) / len(counts) if counts else 0.0
