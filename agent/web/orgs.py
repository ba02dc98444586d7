"""Organisations: an NGO's shared subscriptions, its members and their roles, and its log.

* ``GET /orgs``: the user's organisations with their role; admins see every
  one and create them (``POST /orgs``: name, address, first owner's login).
* ``GET /orgs/{slug}``: the shared subscriptions, the members, the newest log
  entries; owners add, change and remove members here (never the last owner).
* ``/orgs/{slug}/subscriptions/...``: the shared subscriptions' forms
  (``agent.web.orgs_subscriptions``); ``/orgs/{slug}/log``: the whole log
  (``agent.web.orgs_log``).

Only members (and admins) see an organisation; anyone else gets 404.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel import col, select
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from agent import accounts, organisations
from agent.accounts import Role
from agent.models import Subscription
from agent.organisations import OrgError, OrgProblem
from agent.web.orgs_access import Access, access
from agent.web.orgs_log import RECENT, LogPage, lines
from agent.web.orgs_subscriptions import SharedSubscriptions
from agent.web.orgs_view import rows
from agent.web.security import checked_form, login_required
from agent.web.site import Site, flash, redirect

#: The field of the create form each problem is about.
CREATE_FIELDS = {
    OrgProblem.BAD_NAME: "name",
    OrgProblem.BAD_SLUG: "slug",
    OrgProblem.SLUG_TAKEN: "slug",
    OrgProblem.NO_SUCH_USER: "owner",
}


def routes(site: Site) -> list[BaseRoute]:
    """This area's routes."""
    return [
        *Organisations(site).routes(),
        *SharedSubscriptions(site).routes(),
        *LogPage(site).routes(),
    ]


class Organisations:
    """The list of organisations, an organisation's page, and its members."""

    def __init__(self, site: Site) -> None:
        self.site = site

    def routes(self) -> list[BaseRoute]:
        """The organisations' and members' routes."""
        guard = login_required(self.site.user_of)
        admin = login_required(self.site.user_of, admin=True)
        member = "/orgs/{slug}/members/{user_id:int}"
        return [
            Route("/orgs", guard(self.index), methods=["GET"]),
            Route("/orgs", admin(self.create), methods=["POST"]),
            Route("/orgs/{slug}", guard(self.show), methods=["GET"]),
            Route("/orgs/{slug}/members", guard(self.add_member), methods=["POST"]),
            Route(member + "/role", guard(self.change_role), methods=["POST"]),
            Route(member + "/remove", guard(self.remove_member), methods=["POST"]),
        ]

    async def index(self, request: Request) -> Response:
        """The user's organisations; for admins, every one and the form to create one."""
        return self._index(request, {}, {})

    async def create(self, request: Request) -> Response:
        """Create an organisation with its first owner (admins only)."""
        form = await checked_form(request)
        given = {key: str(form.get(key) or "").strip() for key in ("name", "slug", "owner")}
        user = self.site.user_of(request)
        try:
            with self.site.session() as session:
                org = organisations.create_organisation(
                    session,
                    given["name"],
                    given["slug"],
                    given["owner"],
                    actor=user.email if user else "",
                    now=self.site.now(),
                )
                session.commit()
        except OrgError as exc:
            return self._index(request, given, {CREATE_FIELDS[exc.problem]: exc.problem}, 400)
        flash(request, "saved")
        return redirect(f"/orgs/{org.slug}")

    async def show(self, request: Request) -> Response:
        """The organisation's shared subscriptions, members and newest log entries."""
        return self._page(request, access(self.site, request))

    async def add_member(self, request: Request) -> Response:
        """Give an existing login a role in the organisation (owners only)."""
        acc = access(self.site, request, least=Role.OWNER)
        form = await checked_form(request)
        email = str(form.get("email") or "").strip()
        role = _role(form.get("role"))
        try:
            with self.site.session() as session:
                organisations.add_member_by_email(
                    session, acc.org, email, role, actor=acc.actor, now=self.site.now()
                )
                session.commit()
        except OrgError as exc:
            given = {"email": email, "role": role.value}
            return self._page(request, acc, given=given, problem=exc.problem, status=400)
        flash(request, "saved")
        return redirect(acc.base)

    async def change_role(self, request: Request) -> Response:
        """Give a member another role (owners only; the last owner stays one)."""
        acc = access(self.site, request, least=Role.OWNER)
        role = _role((await checked_form(request)).get("role"))
        return self._member_change(request, acc, role)

    async def remove_member(self, request: Request) -> Response:
        """Take a member out of the organisation (owners only; never the last owner)."""
        acc = access(self.site, request, least=Role.OWNER)
        await checked_form(request)
        return self._member_change(request, acc, None)

    def _member_change(self, request: Request, acc: Access, role: Role | None) -> Response:
        try:
            with self.site.session() as session:
                user = session.get(accounts.User, int(request.path_params["user_id"]))
                if user is None:
                    raise HTTPException(404, "No such member.")
                if role is None:
                    organisations.remove_member(
                        session, acc.org, user, actor=acc.actor, now=self.site.now()
                    )
                else:
                    organisations.change_role(
                        session, acc.org, user, role, actor=acc.actor, now=self.site.now()
                    )
                session.commit()
        except OrgError as exc:
            if exc.problem is OrgProblem.NOT_MEMBER:
                raise HTTPException(404, "No such member.") from exc
            return self._page(request, acc, problem=exc.problem, status=409)
        flash(request, "saved")
        return redirect(acc.base)

    def _index(
        self,
        request: Request,
        given: Mapping[str, str],
        problems: Mapping[str, OrgProblem],
        status: int = 200,
    ) -> Response:
        user = self.site.user_of(request)
        with self.site.session() as session:
            found = organisations.organisations_of(session, user) if user else []
        values = {
            "orgs": found,
            "given": {"name": "", "slug": "", "owner": "", **given},
            "problems": {name: problem.value for name, problem in problems.items()},
        }
        return self.site.pages.render(request, "orgs/index.html", values, status=status)

    def _page(
        self,
        request: Request,
        acc: Access,
        *,
        given: Mapping[str, str] | None = None,
        problem: OrgProblem | None = None,
        status: int = 200,
    ) -> Response:
        org_id = acc.org.id or 0
        with self.site.session() as session:
            subs = session.exec(
                select(Subscription)
                .where(Subscription.organisation_id == org_id)
                .order_by(col(Subscription.name))
            ).all()
            members = organisations.members(session, org_id)
            entries, total = organisations.audit_log(session, org_id, limit=RECENT)
        values: dict[str, Any] = {
            "acc": acc,
            "subs": rows(self.site, list(subs), editor=acc.may_edit),
            "members": members,
            "owners": sum(1 for _, role in members if role is Role.OWNER),
            "roles": [role.value for role in Role],
            "lines": lines(entries),
            "total": total,
            "given": {"email": "", "role": Role.VIEWER.value, **(given or {})},
            "problem": problem.value if problem else None,
        }
        return self.site.pages.render(request, "orgs/org.html", values, status=status)


def _role(given: object) -> Role:
    """The role a form names; anything else is refused."""
    try:
        return Role(str(given))
    except ValueError:
        raise HTTPException(400, "Unknown role.") from None
