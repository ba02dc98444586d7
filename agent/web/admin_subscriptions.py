"""The console's subscriptions: the noise each rule makes, and editing a rule safely.

* ``GET /admin/subscriptions`` -- every subscription with its owner, channels,
  state and noise (matches and alerts sent per week over the last four
  weeks), sorted by noise or name;
* ``GET /admin/subscriptions/<id>`` -- one subscription, its weeks, and its
  rule in the rule editor;
* ``POST /admin/subscriptions/<id>/preview`` -- what the edited rule would add
  and remove over the last 30 days, before anything is saved, with a button
  that saves it;
* ``POST /admin/subscriptions/<id>/save`` -- save the edited rule (a rule
  error is shown where it is, and nothing is saved), written to the audit log.

Admins only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlmodel import Session, select
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from agent.accounts import Organisation
from agent.config import format_errors
from agent.errors import RuleError
from agent.models import Subscription
from agent.rules import RuleSpec, describe
from agent.web.admin_subscriptions_edit import Preview, current_node, preview, save_rule
from agent.web.admin_subscriptions_noise import Noise, State, noise, weeks
from agent.web.forms import RuleForm, read_rule, rule_params
from agent.web.security import checked_form, login_required
from agent.web.site import Site, flash, redirect

E = TypeVar("E", bound=StrEnum)

#: Subscriptions per page of the list.
PAGE_SIZE = 50


class Sort(StrEnum):
    """How the list is ordered: the noisiest first, or by name."""

    MATCHES = "matches"
    SENT = "sent"
    NAME = "name"


@dataclass(frozen=True)
class Row:
    """One subscription in the list."""

    sub: Subscription
    state: State
    noise: Noise
    organisation: Organisation | None


def routes(site: Site) -> list[BaseRoute]:
    """This area's routes."""
    admin = login_required(site.user_of, admin=True)

    @admin
    async def listing(request: Request) -> Response:
        sort = choice(Sort, request.query_params.get("sort")) or Sort.MATCHES
        page = page_number(request.query_params.get("page"))
        with site.session() as session:
            rows = _rows(session, site)
        rows.sort(key=_sort_key(sort))
        shown = rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        values = {"rows": shown, "sort": sort.value, "page": page, "total": len(rows)}
        values["more"] = page * PAGE_SIZE < len(rows)
        return site.pages.render(request, "admin/subscriptions.html", values)

    @admin
    async def detail(request: Request) -> Response:
        with site.session() as session:
            sub = _subscription(session, request)
            form = RuleForm(RuleSpec.model_validate(sub.rule), given=True)
            return _detail(site, request, session, sub, form)

    @admin
    async def preview_edit(request: Request) -> Response:
        form = read_rule(await checked_form(request))
        with site.session() as session:
            sub = _subscription(session, request)
            if not form.ok or form.node is None:
                return _detail(site, request, session, sub, form, status=400)
            try:
                shown = preview(session, sub, form.node, now=site.now())
            except RuleError as exc:  # the saved rule, not the edit: say so, save nothing
                return _detail(site, request, session, sub, form, status=400, error=str(exc))
            return _detail(site, request, session, sub, form, shown=shown)

    @admin
    async def save(request: Request) -> Response:
        form = read_rule(await checked_form(request))
        user = site.user_of(request)
        assert user is not None
        with site.session() as session:
            sub = _subscription(session, request)
            if not form.ok:
                return _detail(site, request, session, sub, form, status=400)
            try:
                save_rule(session, sub, form.spec, actor=user.email, now=site.now())
            except (ValidationError, RuleError) as exc:
                session.rollback()
                why = format_errors(exc).strip() if isinstance(exc, ValidationError) else str(exc)
                return _detail(site, request, session, sub, form, status=400, error=why)
            session.commit()
        flash(request, "saved")
        return redirect(f"/admin/subscriptions/{sub.id}")

    return [
        Route("/admin/subscriptions", listing),
        Route("/admin/subscriptions/{id:int}", detail),
        Route("/admin/subscriptions/{id:int}/preview", preview_edit, methods=["POST"]),
        Route("/admin/subscriptions/{id:int}/save", save, methods=["POST"]),
    ]


def _detail(
    site: Site,
    request: Request,
    session: Session,
    sub: Subscription,
    form: RuleForm,
    *,
    shown: Preview | None = None,
    status: int = 200,
    error: str | None = None,
) -> Response:
    """The subscription's page: details, weeks, the rule editor and any preview."""
    assert sub.id is not None
    organisation = session.get(Organisation, sub.organisation_id) if sub.organisation_id else None
    values: dict[str, Any] = {
        "sub": sub,
        "state": State.of(sub).value,
        "organisation": organisation,
        "weeks": weeks(session, sub.id, now=site.now()),
        "rule_text": _rule_text(sub),
        "form": form,
        "preview": shown,
        "save_params": rule_params(form.spec) if shown is not None else [],
        "error": error,
    }
    return site.pages.render(request, "admin/subscription.html", values, status=status)


def _rule_text(sub: Subscription) -> str:
    """The saved rule written as a query, as ``subscriptions list`` shows it."""
    try:
        return describe(current_node(sub))
    except RuleError:
        return ""


def _rows(session: Session, site: Site) -> list[Row]:
    counts = noise(session, now=site.now())
    organisations = {org.id: org for org in session.exec(select(Organisation))}
    return [
        Row(
            sub,
            State.of(sub),
            counts.get(sub.id or 0, Noise()),
            organisations.get(sub.organisation_id),
        )
        for sub in session.exec(select(Subscription))
    ]


def _sort_key(sort: Sort) -> Any:
    if sort is Sort.NAME:
        return lambda row: (row.sub.name.casefold(), row.sub.id)
    if sort is Sort.SENT:
        return lambda row: (-row.noise.sent, -row.noise.matches, row.sub.name.casefold())
    return lambda row: (-row.noise.matches, -row.noise.sent, row.sub.name.casefold())


def _subscription(session: Session, request: Request) -> Subscription:
    sub = session.get(Subscription, request.path_params["id"])
    if sub is None:
        raise HTTPException(404, "No such subscription.")
    return sub


def choice(enum: type[E], given: str | None) -> E | None:
    """``given`` (a query parameter) as a member of ``enum``; ``None`` if it is none."""
    return enum(given) if given in {member.value for member in enum} else None


def page_number(given: str | None) -> int:
    """The page number a query parameter asks for; 1 if none or nonsense."""
    return int(given) if given and given.isdigit() and int(given) > 0 else 1
