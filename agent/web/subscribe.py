"""Subscribing without an account, and the live preview of a rule.

* ``GET /subscribe`` -- the form, its rule prefilled from the query string
  (how "alert me about this search" arrives from ``/items``).
* ``POST /subscribe`` -- with ``action=preview`` (the "Preview" button, for
  browsers without JavaScript) the page again with the preview; otherwise the
  form is checked (nothing is saved on an error) and the visitor signed up
  (``agent.web.signup``): "check your inbox", "connect your chat" or the feeds.
* ``GET /preview?<rule>`` -- the preview (``agent.web.preview_rule``) as an
  htmx answer: the summary goes to the form's live region, the chart and the
  newest matches below it; a rule's error is shown at its position. Asked
  without htmx, the form page with the preview.
* ``GET|POST /confirm/<token>`` -- ``agent.web.subscribe_confirm``.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from agent import i18n
from agent.errors import AgentError
from agent.subscriptions import CADENCES
from agent.web.forms import RULE_FIELDS, RuleForm
from agent.web.pages import language_of
from agent.web.preview_rule import WINDOW, Preview, preview
from agent.web.security import checked_form, client_of
from agent.web.signup import (
    RESEND_AFTER,
    ConfirmationNotSent,
    NextStep,
    SignUp,
    TooManySignUps,
    sign_up,
)
from agent.web.site import Site
from agent.web.subscribe_confirm import confirm_routes
from agent.web.subscribe_form import (
    Channel,
    Problem,
    SubscribeForm,
    blank,
    channels,
    default_name,
    read,
)


def routes(site: Site) -> list[BaseRoute]:
    """This area's routes."""
    offered = channels(site.agent.config.notifiers.enabled())

    async def show(request: Request) -> Response:
        form = blank(request.query_params, offered, language=language_of(request))
        shown = None
        if form.rule.given:  # "alert me about this search": show what it would have sent
            shown = await _preview(site, form.rule, form.language)
        return _page(site, request, form, offered, shown)

    async def submit(request: Request) -> Response:
        posted = await checked_form(request)
        language = language_of(request)
        rule_form = blank(posted, offered, language=language).rule
        form = read(posted, offered, default_name=_default_name(site, rule_form, language))
        if posted.get("action") == "preview":
            # Only the rule is judged yet: the rest is checked when the visitor subscribes.
            form.rule, form.errors = rule_form, {}
            shown = await _preview(site, rule_form, language)
            return _page(site, request, form, offered, shown)
        if form.given is None:
            return _page(site, request, form, offered, status=400)
        try:
            done = await sign_up(site, form.given, connect=form.connect, client=client_of(request))
        except TooManySignUps as exc:
            retry = {"Retry-After": str(math.ceil(exc.wait.total_seconds()))}
            return _page(
                site, request, form, offered, problem=Problem.TOO_MANY, status=429, headers=retry
            )
        except ConfirmationNotSent:
            return _page(site, request, form, offered, problem=Problem.NOT_SENT, status=503)
        except AgentError:
            return _page(site, request, form, offered, problem=Problem.UNAVAILABLE, status=400)
        return _done(site, request, form, done)

    async def live(request: Request) -> Response:
        language = language_of(request)
        form = blank(request.query_params, offered, language=language)
        shown = await _preview(site, form.rule, language)
        if request.headers.get("hx-request") != "true":
            return _page(site, request, form, offered, shown)
        answer = site.pages.fragment(request, "subscribe/preview.html", {**shown, "oob": True})
        return HTMLResponse(answer)

    return [
        Route("/subscribe", show, methods=["GET"]),
        Route("/subscribe", submit, methods=["POST"]),
        Route("/preview", live, methods=["GET"]),
        *confirm_routes(site),
    ]


def _page(
    site: Site,
    request: Request,
    form: SubscribeForm,
    offered: list[Channel],
    shown: dict[str, Any] | None = None,
    *,
    problem: Problem | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """The form page, with its errors and, when asked for, the preview."""
    values = {
        "form": form,
        "channels": offered,
        "rule_params": ",".join(RULE_FIELDS),
        "cadences": CADENCES,
        "problem": problem,
        **(shown or _no_preview(form.rule)),
    }
    return site.pages.render(request, "subscribe/form.html", values, status=status, headers=headers)


def _done(site: Site, request: Request, form: SubscribeForm, done: SignUp) -> Response:
    """The page after signing up: what to do next."""
    values: dict[str, Any] = {"sub": done.subscription, "links": done.links}
    if done.next_step is NextStep.CONFIRM:
        address = next(iter(done.subscription.addresses.values()), "")
        values |= {"address": address, "sent": done.sent, "minutes": _minutes(RESEND_AFTER)}
        return site.pages.render(request, "subscribe/check_inbox.html", values)
    if done.next_step is NextStep.CONNECT:
        prefix = f"{form.channel}_"
        chats = [
            (key[len(prefix) :], url) for key, url in done.links.items() if key.startswith(prefix)
        ]
        values |= {"channel": form.channel, "chats": chats}
        return site.pages.render(request, "subscribe/connect.html", values)
    return site.pages.render(request, "subscribe/ready.html", values)


async def _preview(site: Site, rule: RuleForm, language: str) -> dict[str, Any]:
    """The preview's values: the rule, the summary sentence, the matches."""
    if rule.node is None or rule.errors:
        return _no_preview(rule)
    node, now = rule.node, site.now()

    def run() -> Preview:
        with site.session() as session:
            return preview(session, node, now=now, language=language)

    # The backtest reads the database: in a thread, so alerts keep going out meanwhile.
    found = await run_in_threadpool(run)
    strings = site.pages.strings[language]["subscribe"]
    count = i18n.plural(strings["preview_count"], found.count, language)
    summary = strings["preview_summary"].format(count=count, days=WINDOW.days)
    return {"rule": rule, "preview": found, "summary": summary, "days": WINDOW.days}


def _no_preview(rule: RuleForm) -> dict[str, Any]:
    """No preview to show: the rule is empty or broken (the page says which)."""
    return {"rule": rule, "preview": None, "summary": "", "days": WINDOW.days}


def _default_name(site: Site, rule: RuleForm, language: str) -> str:
    strings = site.pages.strings[i18n.language_of(language)]["subscribe"]
    kinds = site.pages.messages[i18n.language_of(language)]["kind"]
    return default_name(rule, kinds, fallback=strings["default_name"])


def _minutes(span: timedelta) -> int:
    return int(span.total_seconds() // 60)
