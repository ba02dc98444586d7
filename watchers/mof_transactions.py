"""Group budget-change lines into transactions keyed as Budget Key keys them.

A port of Budget Key's ``budget/national/changes/processed/extract-change-groups.py``,
so every key is a Budget Key ``transaction_id``:

* a request is ``year/leading_item-req_code`` (``2014/01-004``);
* requests of different sections that balance each other through the general
  reserve (section 47) are one transaction: on one date, their reserve lines
  (codes ``0047…``, with some amount) sum to zero in every amount column. Pairs
  are tried first, then threes, up to six, in file order;
* the transaction takes the id of its first request (in id order) whose own
  non-reserve lines add up to more than zero, else of its first request;
* a request in several groups keeps the id of the last (BK's ``join`` keeps the
  last value), and every other request is a transaction of its own.

Budget Key also caches each date's groups between runs and leaves out section
47's own requests; this port recomputes the groups on every poll and keeps
section 47's requests, each as a transaction of its own.
"""

from __future__ import annotations

import itertools
import logging
from collections import defaultdict
from dataclasses import dataclass

from watchers.mof_csv import Line

logger = logging.getLogger(__name__)

#: Budget Key tries groups of two up to this many requests.
MAX_GROUP = 6
#: Comparisons allowed per date before the search gives up and leaves requests ungrouped.
SEARCH_BUDGET = 200_000
#: Amounts are sums of parsed decimals: this close to zero is zero.
_EPSILON = 1e-6


@dataclass(frozen=True)
class Transaction:
    """One budget-change transaction: the lines of one request, or of balancing requests."""

    id: str
    lines: list[Line]

    @property
    def requests(self) -> tuple[str, ...]:
        """Return the ids of the requests it merges, in id order."""
        return tuple(sorted({line.request_id for line in self.lines}))

    @property
    def is_pending(self) -> bool:
        """Tell whether any of its lines is still before the committee (BK ``max(pending)``)."""
        return any(line.pending for line in self.lines)

    @property
    def changes(self) -> list[Line]:
        """Return the lines Budget Key shows: all but the reserve lines (``filter_reserve.py``)."""
        return [line for line in self.lines if not line.is_reserve]


class _Exhausted(Exception):
    """The combination search spent its budget."""


def group(lines: list[Line], *, budget: int = SEARCH_BUDGET) -> list[Transaction]:
    """Return the transactions of ``lines`` (in Budget Key's file order), in first-line order."""
    by_request: dict[str, list[Line]] = defaultdict(list)
    for line in lines:
        by_request[line.request_id].append(line)
    reserve = [line for line in lines if line.is_reserve and any(line.diffs)]
    balancing = {line.request_id for line in reserve}
    groups = [[request] for request in sorted(set(by_request) - balancing)]
    for date_kind, same_day in itertools.groupby(sorted(reserve, key=_date_kind), _date_kind):
        groups.extend(_day_groups(date_kind, list(same_day), budget))
    owner: dict[str, str] = {}
    for requests in groups:
        chosen = _representative(sorted(set(requests)), by_request)
        owner.update(dict.fromkeys(requests, chosen))  # the last group wins, as in BK's join
    merged: dict[str, list[Line]] = defaultdict(list)
    for line in lines:
        merged[owner[line.request_id]].append(line)
    return [Transaction(id=key, lines=group_lines) for key, group_lines in merged.items()]


def _date_kind(line: Line) -> str:
    # BK get_changes(): the date, else "pending", else the request itself (never grouped).
    if line.day is not None:
        return line.day.isoformat()
    return "pending" if line.pending else line.request_id


def _day_groups(date_kind: str, reserve: list[Line], budget: int) -> list[list[str]]:
    search = _Search(budget)
    groups: list[list[str]] = []
    rest = reserve
    try:
        for size in range(2, min(len(reserve), MAX_GROUP) + 1):
            if len(rest) < size:
                break
            found, rest = search.find_all(rest, size)
            groups.extend([line.request_id for line in combo] for combo in found)
    except _Exhausted:
        logger.warning("%s: %d reserve lines left ungrouped: search too long", date_kind, len(rest))
    return groups + [[line.request_id] for line in rest]


def _representative(requests: list[str], by_request: dict[str, list[Line]]) -> str:
    if len(requests) > 1:
        for request in requests:
            own = [line for line in by_request[request] if not line.is_reserve]
            if sum(sum(line.diffs) for line in own) > 0:
                return request
    return requests[0]


class _Search:
    """Budget Key's ``find_all_transactions``: combinations of ``size`` lines that sum to zero."""

    def __init__(self, budget: int) -> None:
        self.left = budget

    def find_all(self, items: list[Line], size: int) -> tuple[list[list[Line]], list[Line]]:
        """Return the zero-sum combinations found greedily in order, and the lines left."""
        found: list[list[Line]] = []
        used: set[int] = set()
        for i in range(len(items) - size + 1):
            if i in used:
                continue
            start = (items[i].leading_item,)
            combo, taken = self._complete([items[i]], start, used | {i}, items, i + 1, size - 1)
            if combo is not None:
                used = taken
                found.append(combo)
        return found, [item for i, item in enumerate(items) if i not in used]

    def _complete(
        self,
        prefix: list[Line],
        sections: tuple[int, ...],
        skip: set[int],
        items: list[Line],
        start: int,
        needed: int,
    ) -> tuple[list[Line] | None, set[int]]:
        if needed > 1:
            for i in range(start, len(items) - needed + 1):
                item = items[i]
                if i in skip or item.leading_item in sections:
                    continue
                more = (*sections, item.leading_item)
                combo, taken = self._complete(
                    [*prefix, item], more, skip | {i}, items, i + 1, needed - 1
                )
                if combo is not None:
                    return combo, taken
            return None, skip
        checksum = [sum(values) for values in zip(*(line.diffs for line in prefix), strict=True)]
        for i in range(start, len(items)):
            item = items[i]
            if i in skip or item.leading_item in sections:
                continue
            self.left -= 1
            if self.left < 0:
                raise _Exhausted
            if all(abs(a + b) < _EPSILON for a, b in zip(item.diffs, checksum, strict=True)):
                return [*prefix, item], skip | {i}
        return None, skip
