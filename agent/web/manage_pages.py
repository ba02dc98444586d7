"""The manage pages: every subscription of a subscriber, one subscription's settings, leaving."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response

from agent import i18n
from agent.models import Subscription
from agent.rules import RuleSpec
from agent.schedule import Cadence
from agent.web.forms import RuleForm
from agent.web.manage_access import Subscriber, render_in
from agent.web.manage_views import SubscriptionView, channel_choices, view_of
from agent.web.pages import LANGUAGE_NAMES
from agent.web.site import Site, redirect

#: Session keys: the notice the next manage page shows, the language of the goodbye page.
NOTICE_KEY = "manage_notice"
GOODBYE_KEY = "manage_language"


class Notice(StrEnum):
    """What the manage page confirms after an action (``t.manage.notice.<it>``)."""

    SAVED = "saved"
    PAUSED = "paused"
    RESUMED = "resumed"
    DELETED = "deleted"


@dataclass
class Visit:
    """One request through a valid manage link: the subscriber, and the page's language."""

    site: Site
    request: Request
    session: Session
    subscriber: Subscriber
    #: The link's token, as in the visited path.
    token: str
    language: str
    strings: i18n.Catalogue = field(init=False)
    messages: i18n.Catalogue = field(init=False)

    def __post_init__(self) -> None:
        self.strings = self.site.pages.strings[self.language]
        self.messages = self.site.pages.messages[self.language]

    @property
    def home(self) -> str:
        """The manage page this link opens."""
        return f"/manage/{self.token}"

    def render(
        self, name: str, values: dict[str, Any], *, status: int = 200, path: str | None = None
    ) -> Response:
        """Render page ``name`` (at ``path``) in the subscriber's language or the visitor's."""
        values = {"home": self.home, **values}
        return render_in(
            self.site, self.request, self.language, name, values, status=status, path=path
        )

    def back(self, notice: Notice, name: str, *, to: str | None = None) -> Response:
        """See the manage page again (or ``to``), confirming what was done to ``name``."""
        self.request.session[NOTICE_KEY] = [notice.value, name]
        return redirect(to or self.home)


def overview(visit: Visit) -> Response:
    """Every subscription of the subscriber, with what can be done to each."""
    notice = visit.request.session.pop(NOTICE_KEY, None)
    own = visit.subscriber.own
    views = [_view(visit, sub) for sub in visit.subscriber.subscriptions]
    return visit.render(
        "manage/manage.html",
        {
            "subscriptions": views,
            "addresses": sorted((own.addresses or {}).items()),
            "notice": notice if isinstance(notice, list) and len(notice) == 2 else None,
        },
    )


def settings(
    visit: Visit,
    sub: Subscription,
    *,
    rule: RuleForm | None = None,
    name: str | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    """One subscription's settings page; after a refused change, with its errors in place."""
    if rule is None:
        rule = RuleForm(RuleSpec.model_validate(sub.rule or {}), given=True)
    configured = visit.site.agent.notifiers
    return visit.render(
        "manage/subscription.html",
        {
            "sub": _view(visit, sub),
            "form": rule,
            "name": sub.name if name is None else name,
            "errors": errors or {},
            "choices": channel_choices(sub, visit.subscriber, configured),
            "cadences": [cadence.value for cadence in Cadence],
            "language_codes": i18n.LANGUAGES,
        },
        status=status,
        path=f"{visit.home}/s/{sub.public_id}",
    )


def leave(visit: Visit) -> Response:
    """Ask before deleting every subscription of the subscriber."""
    views = [_view(visit, sub) for sub in visit.subscriber.subscriptions]
    return visit.render("manage/leave.html", {"subscriptions": views})


def goodbye(site: Site, request: Request) -> Response:
    """After the last subscription is gone: in the language the subscriber was reading."""
    kept = request.session.get(GOODBYE_KEY)
    if "lang" in request.query_params or "lang" in request.session or kept not in LANGUAGE_NAMES:
        return site.pages.render(request, "manage/goodbye.html")
    return render_in(site, request, str(kept), "manage/goodbye.html")


def _view(visit: Visit, sub: Subscription) -> SubscriptionView:
    return view_of(sub, visit.site.links, visit.strings, visit.messages, visit.language)
