"""The admin console's sources page: every source's health, and turning one off, on, or polling it.

* ``GET /admin/sources`` -- a row per configured source: status in words, failures
  in a row, time since its last good poll, new items per day (last 7 days), the last
  error, who disabled it and since when;
* ``POST /admin/sources/<name>/disable`` and ``/enable`` -- stored in ``SourceState``
  (``disabled_at``, ``disabled_by``): the scheduler's polls skip it
  (``agent.pipeline``) and ``/health`` calls it disabled. One disabled in
  ``config.toml`` stays disabled: the configuration is the operator's word;
* ``POST /admin/sources/<name>/poll`` -- polls it now, in the background.

Each action comes back to the page with a notice (kept in the session under
``NOTICE``: the site's shared flash messages have no words for these).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from babel.dates import format_timedelta
from babel.numbers import format_decimal
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from agent.health import SourceHealth, SourceStatus
from agent.health import check as check_health
from agent.i18n import LOCALES
from agent.models import SourceState
from agent.web.admin_stats import AVERAGE_DAYS, items_since
from agent.web.pages import language_of
from agent.web.security import checked_form, login_required
from agent.web.site import Site, redirect

logger = logging.getLogger(__name__)

#: The session key of the notice the sources page shows once.
NOTICE = "admin_notice"
PAGE = "/admin/sources"


class Notice(StrEnum):
    """What an action on a source says when the page comes back."""

    DISABLED = "disabled"
    ENABLED = "enabled"
    POLLING = "polling"
    #: "Poll now" on a disabled source: refused.
    REFUSED_DISABLED = "refused_disabled"
    #: "Poll now" while a poll asked for from here still runs.
    BUSY = "busy"
    #: "Enable" on a source that ``config.toml`` disables: only the file can.
    IN_CONFIG = "in_config"

    @property
    def is_error(self) -> bool:
        """Whether the action was refused (shown as an alert, not a status)."""
        return self in (Notice.REFUSED_DISABLED, Notice.BUSY, Notice.IN_CONFIG)


@dataclass(frozen=True)
class SourceRow:
    """One source as the admin sees it."""

    name: str
    kind: str
    health: SourceHealth
    #: ``False`` in ``config.toml``: only the file can turn it on.
    configured_on: bool
    #: Time since the last good poll, in words ("3 hours ago"); empty if never.
    lag: str
    #: New items per day over the last ``AVERAGE_DAYS`` days, formatted.
    per_day: str
    #: A poll asked for from this page is running.
    polling: bool

    @property
    def state(self) -> SourceState:
        """The stored state (an empty one before the first poll)."""
        return self.health.state or SourceState(name=self.name)

    @property
    def disabled_here(self) -> bool:
        """Disabled from the console (not by the configuration)."""
        return self.state.disabled_at is not None

    @property
    def disabled(self) -> bool:
        """Not polled, for either reason."""
        return self.health.status is SourceStatus.DISABLED


def source_rows(site: Site, language: str) -> list[SourceRow]:
    """Every configured source's row, in the configuration's order."""
    now = site.now()
    sources = site.agent.config.sources
    health = check_health(site.db, sources, now=now)
    with site.session() as session:
        recent = items_since(session, now - timedelta(days=AVERAGE_DAYS))
    locale = LOCALES[language]
    running = {task.get_name() for task in site.tasks}
    rows = []
    for found in health.sources:
        success = found.state.last_success_at if found.state else None
        lag = "" if success is None else _ago(now - success, locale)
        per_day = format_decimal(recent[found.name] / AVERAGE_DAYS, "#,##0.#", locale=locale)
        source = sources[found.name]
        rows.append(
            SourceRow(
                found.name,
                source.kind,
                found,
                source.enabled,
                lag,
                per_day,
                _task_name(found.name) in running,
            )
        )
    return rows


def routes(site: Site) -> list[BaseRoute]:
    """The sources page and its actions."""
    admin_only = login_required(site.user_of, admin=True)

    @admin_only
    async def page(request: Request) -> Response:
        """Every source's health, with its actions."""
        rows = source_rows(site, language_of(request))
        values = {"rows": rows, "notice": _take_notice(request)}
        return site.pages.render(request, "admin/sources.html", values)

    @admin_only
    async def disable(request: Request) -> Response:
        """Stop polling a source until it is enabled here again."""
        name = await _named(site, request)
        user = site.user_of(request)
        with site.session() as session:
            state = session.get(SourceState, name) or SourceState(name=name)
            if state.disabled_at is None:
                state.disabled_at, state.disabled_by = site.now(), user.email if user else None
                session.add(state)
                session.commit()
                logger.info("source %s disabled by %s", name, state.disabled_by)
        return _back(request, Notice.DISABLED, name)

    @admin_only
    async def enable(request: Request) -> Response:
        """Poll a source again on its interval (unless the configuration disables it)."""
        name = await _named(site, request)
        with site.session() as session:
            state = session.get(SourceState, name)
            if state is not None and state.disabled_at is not None:
                state.disabled_at = state.disabled_by = None
                session.add(state)
                session.commit()
                logger.info("source %s enabled again", name)
        if not site.agent.config.sources[name].enabled:
            return _back(request, Notice.IN_CONFIG, name)
        return _back(request, Notice.ENABLED, name)

    @admin_only
    async def poll_now(request: Request) -> Response:
        """Poll a source now, in the background; refused while it is disabled."""
        name = await _named(site, request)
        if _disabled(site, name):
            return _back(request, Notice.REFUSED_DISABLED, name)
        if any(task.get_name() == _task_name(name) for task in site.tasks):
            return _back(request, Notice.BUSY, name)
        site.spawn(site.agent.poll(name), name=_task_name(name))
        return _back(request, Notice.POLLING, name)

    return [
        Route(PAGE, page, methods=["GET"]),
        Route(PAGE + "/{name}/disable", disable, methods=["POST"]),
        Route(PAGE + "/{name}/enable", enable, methods=["POST"]),
        Route(PAGE + "/{name}/poll", poll_now, methods=["POST"]),
    ]


async def _named(site: Site, request: Request) -> str:
    """The configured source the action names (404 otherwise), once the form's token is checked."""
    await checked_form(request)
    name = str(request.path_params["name"])
    if name not in site.agent.config.sources:
        raise HTTPException(404, "No such source.")
    return name


def _disabled(site: Site, name: str) -> bool:
    """Whether the configuration or an admin has turned the source off."""
    with site.session() as session:
        state = session.get(SourceState, name)
    return not site.agent.config.sources[name].enabled or (
        state is not None and state.disabled_at is not None
    )


def _take_notice(request: Request) -> tuple[Notice, str] | None:
    """The notice an action left for this page (once), if it is one this version knows."""
    found = request.session.pop(NOTICE, None)
    if isinstance(found, list) and len(found) == 2 and found[0] in set(Notice):
        return Notice(found[0]), str(found[1])
    return None


def _back(request: Request, notice: Notice, name: str) -> Response:
    request.session[NOTICE] = [notice.value, name]
    return redirect(PAGE)


def _task_name(source: str) -> str:
    return f"poll-now:{source}"


def _ago(delta: timedelta, locale: str) -> str:
    # Negative: Babel words a past interval as "… ago" in each language.
    return format_timedelta(-delta, locale=locale, add_direction=True)
