"""The admin console: the dashboard, and the sources page (``agent.web.admin_sources``).

``GET /admin`` (admins only) shows what needs attention first -- sources that
fail, go stale or were disabled here, dead deliveries -- then how many
subscriptions are active, paused or awaiting their address's confirmation,
and two sets of charts over the last 30 local days: new items per day for
each source, and alerts sent per day on each channel. Every chart is an SVG
with the same figures in a table for screen readers (``chart.html``).

The console's other pages (subscriptions, deliveries, templates) are their
own areas; every console page shows the same menu (``admin/nav.html``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from agent.health import SourceHealth, SourceStatus
from agent.health import check as check_health
from agent.web import admin_sources
from agent.web.admin_stats import (
    Days,
    Rows,
    dead_deliveries,
    items_per_day,
    sent_per_day,
    subscription_counts,
)
from agent.web.pages import language_of
from agent.web.security import login_required
from agent.web.site import Site

#: Source statuses the dashboard lists first.
ATTENTION = (SourceStatus.FAILING, SourceStatus.STALE, SourceStatus.DISABLED)


@dataclass(frozen=True)
class Chart:
    """One bar chart: what it counts (a source or a channel), its days, its total."""

    id: str
    name: str
    rows: Rows

    @property
    def total(self) -> int:
        """The sum over every day."""
        return sum(value for _, value in self.rows)


def charts(
    prefix: str, names: list[str], counts: dict[str, Counter[date]], days: Days, language: str
) -> list[Chart]:
    """A chart for each name that counted anything in the period."""
    shown = [name for name in names if counts.get(name)]
    return [
        Chart(f"{prefix}-{index}", name, days.rows(counts[name], language))
        for index, name in enumerate(shown)
    ]


def routes(site: Site) -> list[BaseRoute]:
    """The dashboard, and the sources page with its actions."""

    @login_required(site.user_of, admin=True)
    async def dashboard(request: Request) -> Response:
        """What needs attention, the subscriptions, and the last 30 days in charts."""
        config = site.agent.config
        language = language_of(request)
        health = check_health(site.db, config.sources, now=site.now())
        days = Days.ending(site.now(), ZoneInfo(config.agent.timezone))
        with site.session() as session:
            items, sent = items_per_day(session, days), sent_per_day(session, days)
            counts, dead = subscription_counts(session), dead_deliveries(session)
        sources = list(config.sources)
        channels = list(dict.fromkeys([*site.agent.notifiers, *sorted(sent)]))
        values = {
            "health": health,
            "attention": [s for s in health.sources if _needs_attention(s)],
            "counts": counts,
            "dead": dead,
            "item_charts": charts("items", sources, items, days, language),
            "quiet_sources": [name for name in sources if not items.get(name)],
            "sent_charts": charts("sent", channels, sent, days, language),
        }
        return site.pages.render(request, "admin/dashboard.html", values)

    return [Route("/admin", dashboard, methods=["GET"]), *admin_sources.routes(site)]


def _needs_attention(found: SourceHealth) -> bool:
    # A source the configuration disables is the operator's standing choice, not news;
    # one disabled from the console is meant to come back, so it stays in view.
    if found.status is SourceStatus.DISABLED:
        return found.state is not None and found.state.disabled_at is not None
    return found.status in ATTENTION
