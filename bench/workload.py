"""Generated items and subscription rules, drawn from the real vocabulary (performance.md §5.2).

Items: about 120 Hebrew tokens (a title of 8–15 words and a description), words drawn
Zipf-like by their real frequency rank, a quarter of them with an attached prefix (ו ה ב ל ול
וה מה ש), and now and then the word that really follows the previous one in the fixtures,
so real phrases occur. Real publishers, four kinds, log-uniform amounts, deadlines 0–60 days
out, event type ``new``.

The fixtures hold only about 2,800 distinct words, so with Zipf(1) even the rarest word
would be in about 0.5 % of 120-token items and no rule could be narrow; a slightly steeper
law (exponent 1.15) leaves a tail of words that are in fewer than 0.3 % of items.

Rules: the "narrow" mix — 40 % one term, 25 % AND of two, 15 % OR of 2–3, 10 % phrase, 5 %
AND NOT, 5 % filters only — with filters on publisher (30 %), kind (50 %), minimum amount
(20 %) and days left (10 %). Rule terms are taken only from words that are, after prefix
stripping, in at most 0.3 % of generated items, so that about 0.1–0.2 % of rules match.
Everything comes from one seeded ``random.Random``.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from agent.models import Event, EventType, Item, Kind
from bench.vocab import Corpus, stems

#: Prefixes glued onto a quarter of the item tokens (performance.md §5.2).
ITEM_PREFIXES = ("ו", "ה", "ב", "ל", "ול", "וה", "מה", "ש")
KINDS = (Kind.TENDER, Kind.EXEMPTION, Kind.CALL_FOR_BIDS, Kind.SUPPORT_CRITERIA)
_SHAPES = ("term", "and", "or", "phrase", "and_not", "filter")
_SHAPE_WEIGHTS = (40, 25, 15, 10, 5, 5)
#: Chance that the next item word is one that really follows the previous word.
_FOLLOW = 0.3
#: Exponent of the Zipf law item words are drawn by (see the module docstring for why not 1).
ZIPF_EXPONENT = 1.15
#: Rule terms are words found in at most this share of generated items.
RULE_MAX_SHARE = 0.003
#: How many generated items that share is estimated on.
_SHARE_SAMPLE = 1000


@dataclass(frozen=True, slots=True)
class RuleDraft:
    """One generated rule, before it is written as a query string or an FTS5 query."""

    shape: str
    #: Positive words: the term(s), the OR alternatives, or the phrase's words.
    terms: tuple[str, ...] = ()
    negated: str | None = None
    kinds: tuple[str, ...] = ()
    publisher: str | None = None
    amount_min: int | None = None
    min_days_left: int | None = None

    def query(self) -> str:
        """Write the rule in the rule language (``agent.rules.parse_query``)."""
        parts = [self._text()] if self.terms else []
        if self.kinds:
            parts.append(f"kind:{_alternatives(self.kinds)}")
        if self.publisher is not None:
            parts.append(f'publisher:"{self.publisher}"')
        if self.amount_min is not None:
            parts.append(f"amount>{self.amount_min}")
        if self.min_days_left is not None:
            parts.append(f"days_left>={self.min_days_left}")
        return " ".join(parts)

    def _text(self) -> str:
        if self.shape == "or":
            return _alternatives(self.terms)
        if self.shape == "phrase":
            return '"' + " ".join(self.terms) + '"'
        if self.shape == "and_not":
            return f"{self.terms[0]} -{self.negated}"
        return " ".join(self.terms)


def _alternatives(values: tuple[str, ...]) -> str:
    return values[0] if len(values) == 1 else "(" + " OR ".join(values) + ")"


class Workload:
    """A seeded generator of events and rule drafts over one corpus."""

    def __init__(self, corpus: Corpus, seed: int) -> None:
        self.corpus = corpus
        self.rng = random.Random(seed)
        words = corpus.words
        self._cum = list(
            itertools.accumulate(rank**-ZIPF_EXPONENT for rank in range(1, len(words) + 1))
        )
        self._follow: dict[str, list[str]] = defaultdict(list)
        for (first, second), count in corpus.bigrams:
            # Weighted by count, so a rare word that once followed a frequent one stays rare.
            self._follow[first].extend([second] * count)
        self._rule_words = self._rare_words(seed)
        rare = set(self._rule_words)
        self._phrases = [pair for pair, _ in corpus.bigrams if pair[0] in rare]
        self._rule_publishers = sorted({p for p in corpus.publishers if '"' not in p})

    def _rare_words(self, seed: int) -> list[str]:
        """Pick the words that occur, as analysed forms, in few generated items.

        Estimated on a separate sample so the main stream stays the same. A word is judged
        by its document frequency after prefix stripping: ``כלכלה`` looks rare in the
        fixtures but is the stem of the frequent ``הכלכלה``.
        """
        main, self.rng = self.rng, random.Random(seed ^ 0x5EED)
        seen: Counter[str] = Counter()
        for _ in range(_SHARE_SAMPLE):
            tokens = self._text(120) + self.rng.choice(self.corpus.publishers).split()
            seen.update({form for token in tokens for form in (token, *stems(token))})
        self.rng = main
        limit = RULE_MAX_SHARE * _SHARE_SAMPLE
        return [word for word in self.corpus.words if seen[word] <= limit]

    def events(self, count: int, now: datetime) -> list[Event]:
        """Make ``count`` new-item events published at ``now``."""
        return [self._event(i, now) for i in range(count)]

    def drafts(self, count: int) -> list[RuleDraft]:
        """Make ``count`` rule drafts in the narrow mix."""
        shapes = self.rng.choices(_SHAPES, weights=_SHAPE_WEIGHTS, k=count)
        return [self._draft(shape) for shape in shapes]

    def _event(self, index: int, now: datetime) -> Event:
        rng = self.rng
        title_length = rng.randint(8, 15)
        words = self._text(120)
        item = Item(
            source="bench",
            kind=rng.choice(KINDS),
            key=f"bench-{index}",
            title=" ".join(words[:title_length]),
            description=" ".join(words[title_length:]),
            publisher=rng.choice(self.corpus.publishers),
            amount=round(10 ** rng.uniform(3, 8)),
            currency="ILS",
            published_at=now,
            deadline=now + timedelta(days=rng.uniform(0, 60)),
        )
        return Event(type=EventType.NEW, item=item, dedup_key=f"new:{index}")

    def _text(self, length: int) -> list[str]:
        rng, words, out = self.rng, self.corpus.words, []
        previous = ""
        for _ in range(length):
            following = self._follow.get(previous)
            if following and rng.random() < _FOLLOW:
                word = rng.choice(following)
            else:
                word = words[bisect.bisect_left(self._cum, rng.random() * self._cum[-1])]
            previous = word
            out.append(rng.choice(ITEM_PREFIXES) + word if rng.random() < 0.25 else word)
        return out

    def _draft(self, shape: str) -> RuleDraft:
        rng = self.rng
        if shape == "filter":
            # Filter-only rules name one office in full and one kind, or they would match
            # a large share of all items and leave the narrow regime.
            kind = (str(rng.choice(KINDS)),)
            return RuleDraft(shape, kinds=kind, publisher=rng.choice(self._rule_publishers))
        terms, negated = self._terms(shape)
        return RuleDraft(
            shape,
            terms=terms,
            negated=negated,
            kinds=self._kinds() if rng.random() < 0.5 else (),
            publisher=self._publisher() if rng.random() < 0.3 else None,
            amount_min=round(10 ** rng.uniform(4, 7)) if rng.random() < 0.2 else None,
            min_days_left=rng.randint(1, 30) if rng.random() < 0.1 else None,
        )

    def _terms(self, shape: str) -> tuple[tuple[str, ...], str | None]:
        rng, pool = self.rng, self._rule_words
        if shape == "phrase":
            return rng.choice(self._phrases), None
        if shape == "and_not":
            first, second = rng.sample(pool, 2)
            return (first,), second
        count = {"term": 1, "and": 2}.get(shape) or rng.randint(2, 3)
        return tuple(rng.sample(pool, count)), None

    def _kinds(self) -> tuple[str, ...]:
        return tuple(str(kind) for kind in self.rng.sample(KINDS, self.rng.randint(1, 2)))

    def _publisher(self) -> str:
        name = self.rng.choice(self._rule_publishers)
        # Half the time only the ministry ("משרד הבריאות" for "משרד הבריאות - מינהל רפואה"):
        # a publisher value matches every unit under it.
        return name.split(" - ")[0] if self.rng.random() < 0.5 else name
