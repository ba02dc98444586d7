"""How one recipient's alerts are cut into messages: folded, sectioned, fitted.

``Plan`` folds each item's alerts into one (``agent.digest``) and, for a
digest, sorts them into sections; ``Cutter`` groups the items into messages
as the channel's ``Layout`` says, splitting only between items and, for one
oversized item, shortening its text before it is escaped, so no tag is cut.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from agent import i18n
from agent.digest import Merged, Section, merge, sections
from agent.views import ItemView, Reader, shorten
from notifiers.base import Batching, Layout

if TYPE_CHECKING:
    from agent.rendering import Alert, Recipient, Renderer


def _longest(
    fits: Callable[[ItemView], bool], cut: Callable[[int], ItemView], high: int
) -> ItemView:
    """Return ``cut(n)`` for the largest ``n <= high`` that fits; ``cut(0)`` must fit."""
    low = 0
    while low < high:
        middle = (low + high + 1) // 2
        if fits(cut(middle)):
            low = middle
        else:
            high = middle - 1
    return cut(low)


@dataclass(frozen=True)
class SectionView:
    """One section of a digest, as templates show it."""

    title: str
    #: What it holds, counted in the reader's language ("3 items").
    subtitle: str
    items: list[ItemView]


@dataclass(frozen=True)
class Plan:
    """What one recipient's alerts become: one per item, maybe in digest sections."""

    shown: list[Alert]
    #: Each shown alert's deliveries (several when an item's alerts were merged).
    carried: dict[int, tuple[int, ...]]
    #: Each shown alert's section, when the message is a digest.
    sections: dict[int, Section]
    tokens: dict[int, str | None]
    held_back: frozenset[int]

    @classmethod
    def of(cls, alerts: Sequence[Alert], layout: Layout, who: Recipient, reader: Reader) -> Plan:
        """Merge each item's alerts (not for feeds: one entry per event) and section a digest."""
        each = layout.batching is Batching.EACH
        merged = [Merged(a, (a.delivery_id,)) for a in alerts] if each else merge(alerts)
        shown = [m.alert for m in merged]
        held = frozenset(a.delivery_id for a in alerts if a.rolled_over)
        kinds: dict[int, Section] = {}
        if not each and (who.digest or held):
            grouped = sections(shown, reader.now)
            shown = [alert for _, group in grouped for alert in group]
            kinds = {alert.delivery_id: section for section, group in grouped for alert in group}
        carried = {m.alert.delivery_id: m.delivery_ids for m in merged}
        return cls(shown, carried, kinds, {a.delivery_id: a.message_token for a in alerts}, held)

    def carried_by(self, views: Sequence[ItemView]) -> tuple[int, ...]:
        """Every delivery the given items stand for."""
        return tuple(i for one in views for i in self.carried[one.delivery_id])

    def context(self, views: list[ItemView], reader: Reader) -> dict[str, Any]:
        """What templates see of these items: the items, and sections if a digest."""
        texts = reader.catalogue["digest"]
        found = [
            SectionView(
                str(texts[section.value]),
                i18n.plural(texts["count"], len(members), reader.language),
                members,
            )
            for section in Section
            if (members := [v for v in views if self.sections.get(v.delivery_id) is section])
        ]
        held = sum(1 for i in self.carried_by(views) if i in self.held_back)
        return {"items": views, "item": views[0], "sections": found, "held_back": held}


@dataclass(frozen=True)
class Cutter:
    """Cuts one recipient's alerts into groups, one message each, as the layout says."""

    renderer: Renderer
    channel: str
    layout: Layout
    #: The template context of a group of items.
    context: Callable[[list[ItemView]], dict[str, Any]]

    def groups(self, views: list[ItemView]) -> list[list[ItemView]]:
        """Return the groups of items, in order."""
        if self.layout.batching is Batching.EACH:
            return [[one] for one in views]
        if self.layout.max_length is None:
            return [views]
        if self.layout.batching is Batching.FIT and len(views) <= self.layout.separate_up_to:
            return [[self._fit_one(one)] for one in views]
        return self._pack(views)

    def _pack(self, views: list[ItemView]) -> list[list[ItemView]]:
        """Group items greedily into messages that fit, splitting only between items."""
        groups: list[list[ItemView]] = []
        current: list[ItemView] = []
        for one in views:
            if current and self._fits([*current, one]):
                current.append(one)
                continue
            if current:
                groups.append(current)
            current = [self._fit_one(one)]
        groups.append(current)
        return groups

    def _fit_one(self, one: ItemView) -> ItemView:
        """Shorten one item's text until its message fits: description, then the rest."""

        def fits(candidate: ItemView) -> bool:
            return self._fits([candidate])

        if fits(one):
            return one
        bare = replace(one, description="")
        if fits(bare):
            return _longest(
                fits,
                lambda n: replace(one, description=shorten(one.description, n)),
                len(one.description),
            )
        bare = replace(bare, changes=(), reasons=())
        if fits(bare):
            return bare
        if fits(replace(bare, title="…")):
            return _longest(
                fits, lambda n: replace(bare, title=shorten(bare.title, n)), len(bare.title)
            )
        limit = self.layout.max_length
        raise ValueError(f"the {self.channel} templates leave no room within {limit} characters")

    def _fits(self, views: list[ItemView]) -> bool:
        context = self.context(views)
        body = self.renderer.optional(self.channel, "body.html", context) or (
            self.renderer.optional(self.channel, "body.txt", context)
        )
        return len(body) <= (self.layout.max_length or len(body))
