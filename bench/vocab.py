"""The benchmark's vocabulary: real Hebrew words, bigrams and office names from the fixtures.

Everything here is read from the recorded Budget Key files in ``tests/data/budgetkey``:
tender and exemption grids (titles, subjects, publishers), support criteria (title, office,
expected purpose), budget changes (request description, programme name) and budget items
(section, area and programme names). Only words of two or more Hebrew letters are kept.
"""

from __future__ import annotations

import csv
import html
import itertools
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

#: A word: a run of Hebrew letters (final forms included).
_WORD = re.compile(r"[\u05d0-\u05ea]{2,}")
_ROW = re.compile(r'(?s)<tr class="grdRow\w*">(.*?)</tr>')
_CELL = re.compile(r"(?s)<td[^>]*>(.*?)</td>")
_TAG = re.compile(r"<[^>]+>")
_PAGE_TITLE = re.compile(r"(?s)<title>(.*?)</title>")
#: Legal Hebrew prefix sequences stripped on the document side (performance.md §6.1).
_PREFIXES = sorted(
    {"ו", "ה", "ב", "ל", "מ", "ש", "כ", "וה", "וב", "ול", "ומ", "וש", "וכ", "שה", "שב", "של"}
    | {"שמ", "מה", "כש", "לכש", "מש", "ושה", "ושב", "ושל", "וכש", "ומה", "שכ", "ושכ"},
    key=len,
    reverse=True,
)
_MIN_STEM = 3
_TOKEN = re.compile(r"\w+")


@dataclass(frozen=True)
class Corpus:
    """Words by falling frequency, real word pairs, and real publisher names."""

    words: tuple[str, ...]
    counts: tuple[int, ...]
    #: Real consecutive word pairs (first, second) in titles and names, with their counts.
    bigrams: tuple[tuple[tuple[str, str], int], ...]
    publishers: tuple[str, ...]


def load_corpus(budgetkey: Path) -> Corpus:
    """Read every text field the benchmark uses from the Budget Key fixture folder."""
    texts = list(_texts(budgetkey))
    counts = Counter(word for text in texts for word in _WORD.findall(text))
    # Ties broken alphabetically so the ranking (and so every run) is repeatable.
    ranked = sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))
    pairs = Counter(pair for text in texts for pair in _pairs(_WORD.findall(text)))
    return Corpus(
        words=tuple(word for word, _ in ranked),
        counts=tuple(count for _, count in ranked),
        bigrams=tuple(sorted(pairs.items())),
        publishers=tuple(sorted(set(_publishers(budgetkey)))),
    )


def stems(word: str) -> list[str]:
    """List the forms of ``word`` with a legal prefix stripped (stem of three letters or more)."""
    return [
        word[len(prefix) :]
        for prefix in _PREFIXES
        if word.startswith(prefix) and len(word) - len(prefix) >= _MIN_STEM
    ]


def strip_forms(text: str) -> str:
    """List every token's prefix-stripped forms, space-separated (for a full-text index)."""
    return " ".join(form for token in _TOKEN.findall(text) for form in stems(token))


def _pairs(words: list[str]) -> Iterator[tuple[str, str]]:
    return itertools.pairwise(words)


def _texts(root: Path) -> Iterator[str]:
    for row in _grid_rows(root / "tenders"):
        yield from row
    for page in sorted((root / "tenders").glob("*.html")):
        yield from (_clean(m) for m in _PAGE_TITLE.findall(page.read_text(encoding="utf-8")))
    yield from _csv_fields(root / "support-criteria", ("title", "office", "expected_purpose"))
    yield from _csv_fields(root / "budget-changes", ("תיאור בקשה", "שם תוכנית"))
    yield from _budget_item_names(root / "budget-items")


def _publishers(root: Path) -> Iterator[str]:
    for page in sorted((root / "tenders").glob("*.html")):
        # Office grids put the publisher third, exemption grids first.
        column = 0 if "Exemption" in page.name else 2
        for row in _rows(page):
            if len(row) > column and _WORD.search(row[column]):
                yield row[column]
    for office in _csv_fields(root / "support-criteria", ("office",)):
        for name in re.split(r"[;\n\t]+", office):
            if _WORD.search(name):
                yield " ".join(name.split())


def _grid_rows(folder: Path) -> Iterator[list[str]]:
    for page in sorted(folder.glob("*.html")):
        yield from _rows(page)


def _rows(page: Path) -> Iterator[list[str]]:
    for row in _ROW.findall(page.read_text(encoding="utf-8")):
        yield [_clean(cell) for cell in _CELL.findall(row)]


def _clean(fragment: str) -> str:
    return " ".join(html.unescape(_TAG.sub(" ", fragment)).split())


def _csv_fields(folder: Path, columns: Iterable[str]) -> Iterator[str]:
    wanted = tuple(columns)
    for path in sorted(folder.glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as handle:
            for record in csv.DictReader(handle):
                yield from (record[column] or "" for column in wanted)


def _budget_item_names(folder: Path) -> Iterator[str]:
    for path in sorted(folder.glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as handle:
            rows = csv.reader(handle)
            next(rows)  # the first of two header rows holds only the years
            header = next(rows)
            names = [i for i, title in enumerate(header) if title.startswith("שם ")]
            for row in rows:
                yield from (row[i] for i in names if i < len(row))
