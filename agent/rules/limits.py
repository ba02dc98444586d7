"""Size limits of a rule, checked before anything recursive touches it.

The parser is recursive descent, and every later step (normal form,
evaluation, explanation, JSON) walks the tree recursively; 200 nested
parentheses or 1,000 ``NOT``s used to end in ``RecursionError``. Now the
query's length, control characters and number of words are checked before
parsing, the nesting while parsing (before each recursive step), and the
structured fields' sizes before compiling. Each refusal is a one-line
``RuleLimitError`` naming the limit and, in a query, the position.

The limits are far above any real rule (the issue's NGO rule nests one
level, with 8 words and values in 119 characters) and far below what would
strain the engine: parsing, indexing and explaining a tree of ``MAX_DEPTH``
levels stays under 230 Python frames, well within the default limit of 1,000.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from agent.errors import RuleLimitError
from agent.models import UNWANTED_CHARACTERS

#: Longest query string, in characters (also for subscription forms and files).
MAX_QUERY_LENGTH = 2_000
#: Deepest nesting of parentheses, ``NOT``/``-`` and ``title:``/``description:`` clauses.
MAX_DEPTH = 32
#: Most words, phrases and field values in one query.
MAX_TERMS = 200
#: Most values in one structured field (``publishers``, ``tags``, ``kinds`` ...).
MAX_VALUES = 100
#: Longest value of a structured field, in characters.
MAX_VALUE_LENGTH = 200


def check_query_text(text: str) -> None:
    """Refuse a query that is too long or holds a control character."""
    if len(text) > MAX_QUERY_LENGTH:
        raise RuleLimitError(
            f"the query is {len(text):,} characters long: at most {MAX_QUERY_LENGTH:,} characters",
            position=MAX_QUERY_LENGTH,
        )
    found = UNWANTED_CHARACTERS.search(text)
    if found is not None:
        raise RuleLimitError(
            f"the query holds a control character (U+{ord(found[0]):04X}); type words instead",
            position=found.start(),
        )


def check_terms(positions: Sequence[int]) -> None:
    """Refuse a query whose words, phrases and values (at ``positions``) are too many."""
    if len(positions) > MAX_TERMS:
        raise RuleLimitError(
            f"the query has {len(positions)} words, phrases and values: "
            f"at most {MAX_TERMS} words, phrases and values",
            position=positions[MAX_TERMS],
        )


def too_deep(position: int) -> RuleLimitError:
    """Return the error for a query nested deeper than ``MAX_DEPTH`` at ``position``."""
    return RuleLimitError(
        f"the query nests too deeply: at most {MAX_DEPTH} levels of parentheses, "
        "NOT and field clauses",
        position=position,
    )


def check_values(name: str, values: Sequence[str]) -> None:
    """Refuse a structured field with too many values, a value too long, or a control character."""
    if len(values) > MAX_VALUES:
        raise RuleLimitError(f"{name}: at most {MAX_VALUES} values, not {len(values)}")
    for value in values:
        if len(value) > MAX_VALUE_LENGTH:
            raise RuleLimitError(
                f"{name}: at most {MAX_VALUE_LENGTH} characters a value, not {len(value):,}"
            )
        found = UNWANTED_CHARACTERS.search(value)
        if found is not None:
            raise RuleLimitError(f"{name}: a control character (U+{ord(found[0]):04X}) in a value")


def check_number(name: str, value: float | None) -> None:
    """Refuse a threshold that is not a finite number: ``nan`` and infinities compare oddly."""
    if value is not None and not math.isfinite(value):
        raise RuleLimitError(f"{name}: must be a finite number, not {value}")
