"""The benchmarks run end to end at tiny sizes (figures are not checked)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlmodel import Session

from agent.config import AgentSettings
from agent.matching import Matcher
from bench import fanout, fanout_db, fanout_report, match
from bench.fts import Fts5Baseline, normalise_publisher, supports_fts5
from bench.vocab import load_corpus, stems
from bench.workload import RuleDraft, Workload
from tests.conftest import FIXTURES, NOW

#: The benchmarks measure SQLite: FTS5, and the fan-out into their own files.
pytestmark = pytest.mark.sqlite_only("the benchmarks measure their own SQLite databases")


def test_benchmark_prints_a_table_of_the_three_engines_with_no_mismatches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "results.md"

    code = match.main(["--sizes", "200", "--items", "5", "--output", str(output)])

    printed = capsys.readouterr().out
    assert code == 0
    header = next(line for line in printed.splitlines() if line.startswith("| subscriptions"))
    for engine in ("engine items/s", "naive loop items/s", "FTS5 per-rule items/s"):
        assert engine in header
    assert "| 200 (" in printed
    assert "0 mismatches on 5 items" in printed
    assert output.read_text(encoding="utf-8").strip() == printed.strip()


def test_vocabulary_is_real_hebrew_from_the_fixtures() -> None:
    corpus = load_corpus(FIXTURES / "budgetkey")

    assert len(corpus.words) > 1000
    assert "משרד" in corpus.words[:5]
    assert "משרד הבריאות" in corpus.publishers
    assert all(len(word) >= 2 and "\u05d0" <= word[0] <= "\u05ea" for word in corpus.words)


def test_the_same_seed_generates_the_same_items_and_rules() -> None:
    corpus = load_corpus(FIXTURES / "budgetkey")

    first, second = Workload(corpus, 7), Workload(corpus, 7)

    assert first.events(3, NOW) == second.events(3, NOW)
    assert first.drafts(50) == second.drafts(50)


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        pytest.param("והביטוח", {"הביטוח", "ביטוח"}, id="vav and he are stripped from a word"),
        pytest.param("לביטוח", {"ביטוח"}, id="lamed is stripped from a word"),
        pytest.param("בית", set(), id="a two-letter stem is not kept"),
        pytest.param("ביטוח", {"יטוח"}, id="a word starting like a prefix yields a false form"),
    ],
)
def test_document_forms_strip_legal_hebrew_prefixes(word: str, expected: set[str]) -> None:
    assert set(stems(word)) == expected


@pytest.mark.parametrize(
    ("draft", "query"),
    [
        pytest.param(RuleDraft("term", terms=("ביטוח",)), "ביטוח", id="a Hebrew term"),
        pytest.param(
            RuleDraft("or", terms=("ענן", "cloud"), kinds=("tender",)),
            "(ענן OR cloud) kind:tender",
            id="an OR of Hebrew and English with a kind",
        ),
        pytest.param(
            RuleDraft("phrase", terms=("שירותי", "ענן"), publisher="משרד הבריאות"),
            '"שירותי ענן" publisher:"משרד הבריאות"',
            id="a phrase from one publisher",
        ),
        pytest.param(
            RuleDraft("and_not", terms=("مدرسة",), negated="ביטחון", amount_min=500000),
            "مدرسة -ביטחון amount>500000",
            id="Arabic and not Hebrew above an amount",
        ),
        pytest.param(
            RuleDraft("filter", kinds=("tender", "exemption"), min_days_left=10),
            "kind:(tender OR exemption) days_left>=10",
            id="filters only",
        ),
    ],
)
def test_rule_drafts_are_written_in_the_rule_language(draft: RuleDraft, query: str) -> None:
    assert draft.query() == query


def test_fts5_baseline_finds_prefixed_words_and_applies_filters() -> None:
    assert supports_fts5()
    events = Workload(load_corpus(FIXTURES / "budgetkey"), 3).events(4, NOW)
    target = events[2].item
    word = target.title.split()[0]
    drafts = [
        RuleDraft("term", terms=(word,)),
        RuleDraft("filter", kinds=(str(target.kind),), publisher=target.publisher),
        RuleDraft("term", terms=("zzzz",)),
    ]

    hits = Fts5Baseline(drafts).match(events, NOW)

    assert 0 in hits[2]
    assert 1 in hits[2]
    assert all(2 not in found for found in hits)


def test_publisher_names_compare_without_punctuation() -> None:
    assert normalise_publisher('משרד הבריאות - המרכז הרפואי ע"ש וולפסון') == (
        "משרד הבריאות המרכז הרפואי עש וולפסון"
    )


def test_fanout_benchmark_commits_the_same_rows_three_ways_and_prints_a_table(
    tmp_path: Path,
) -> None:
    settings = fanout.Settings(subscriptions=1000, items=30, seed=5, passes=2)

    result = fanout.measure(settings, tmp_path)
    printed = fanout_report.render(result, settings.seed)

    assert len(result.passes) == 2
    for done in result.passes:
        assert done.poll.error is None
        assert done.poll.rows > 0
        assert done.at_once.rows == done.per_row.rows == done.poll.rows
    assert result.events >= result.items == 30
    header = next(line for line in printed.splitlines() if line.startswith("| subscriptions"))
    assert "poll rows/s" in header
    assert "one INSERT per row" in header
    assert f"| 1,000 | 30 → {result.events} | {result.poll.rows:,} |" in printed
    assert "fastest of 2 passes" in printed


def test_fanout_rows_of_a_failed_poll_are_the_rows_a_poll_commits(tmp_path: Path) -> None:
    workload = Workload(load_corpus(FIXTURES / "budgetkey"), 5)
    items = [event.item for event in workload.events(30, fanout.NOW)]
    queries = [draft.query() for draft in workload.drafts(1000)]
    found = []
    for name in ("polled", "rebuilt"):
        db = fanout_db.create(tmp_path / f"{name}.db")
        fanout_db.subscribe(db, queries, seed=5, now=fanout.NOW)
        matcher = Matcher()
        with Session(db) as session:
            matcher.sync(session)
        if name == "polled":
            poll, _ = asyncio.run(fanout.timed_poll(db, items, matcher, AgentSettings()))
            assert poll.error is None
            rows = fanout_db.committed_rows(db)
        else:
            rows = fanout_db.expected_rows(
                db,
                fanout.SOURCE,
                items,
                matcher,
                settings=AgentSettings(),
                channels=fanout.CHANNELS,
                now=fanout.NOW,
            )
        found.append(
            sorted(rows, key=lambda r: (r["event_id"], r["subscription_id"], r["channel"]))
        )

    assert found[0]
    assert found[0] == found[1]


def test_fanout_report_says_when_the_poll_failed() -> None:
    failed = fanout_db.Timed(52.5, 0, "database x.db: too many SQL variables")
    per_row = fanout_db.Timed(60.0, 180_000)
    result = fanout.Result(
        subscriptions=100_000,
        items=1000,
        index_seconds=6.5,
        passes=(fanout.Pass(1050, failed, failed, per_row),),
    )

    printed = fanout_report.render(result, 1)

    assert "| 100,000 | 1,000 → 1,050 | 180,000 | 6.5 |" in printed
    assert "| 6.5 | failed after 52.5 | failed | failed | 3,000 | – (–) | ❌ fail |" in printed
    assert "- the poll failed: database x.db: too many SQL variables" in printed
