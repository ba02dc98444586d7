"""An organisation's shared subscriptions: editors and owners create, edit, pause, resume, delete.

Every change is logged (``accounts.record``) in the transaction that makes it,
with the acting member's e-mail and snapshots before and after
(``organisations.snapshot``). Viewers see the subscriptions on the organisation's
page but get no forms: the forms and every POST here answer them 403.

Recipients typed here are trusted: unlike the public subscribe form, there is
no double opt-in, because only a member whose login an admin made, and whom an
owner gave the editor role, can type them, and every change says who made it.
Each message still carries a one-click unsubscribe, which suppresses the
address for good.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from agent import accounts, organisations, subscriptions
from agent.accounts import AuditAction, Role
from agent.models import Subscription
from agent.subscriptions import SubscriptionInput
from agent.web import orgs_form
from agent.web.orgs_access import Access, access
from agent.web.orgs_form import Problem, SharedForm
from agent.web.orgs_view import channel_choices, group_links
from agent.web.pages import language_of
from agent.web.security import checked_form, login_required
from agent.web.site import Site, flash, redirect

#: Where a shared subscription's pages are, under its organisation's.
PATH = "/orgs/{slug}/subscriptions"


class SharedSubscriptions:
    """The form pages and the changes of an organisation's shared subscriptions."""

    def __init__(self, site: Site) -> None:
        self.site = site

    def routes(self) -> list[BaseRoute]:
        """The shared subscriptions' routes."""
        guard = login_required(self.site.user_of)
        one = PATH + "/{public_id}"
        return [
            Route(PATH + "/new", guard(self.new), methods=["GET"]),
            Route(PATH + "/new", guard(self.create), methods=["POST"]),
            Route(one, guard(self.edit), methods=["GET"]),
            Route(one, guard(self.update), methods=["POST"]),
            Route(one + "/pause", guard(self.pause), methods=["POST"]),
            Route(one + "/resume", guard(self.resume), methods=["POST"]),
            Route(one + "/delete", guard(self.delete), methods=["POST"]),
        ]

    async def new(self, request: Request) -> Response:
        """The form for a new shared subscription (a search's query string fills in the rule)."""
        acc = access(self.site, request, least=Role.EDITOR)
        blank = orgs_form.blank(request.query_params, language=language_of(request))
        return self._form(request, acc, blank)

    async def create(self, request: Request) -> Response:
        """Save a new shared subscription; log it."""
        acc = access(self.site, request, least=Role.EDITOR)
        shared = orgs_form.read(await checked_form(request), self.site.agent.notifiers)
        if not shared.ok:
            return self._form(request, acc, shared, status=400)
        with self.site.session() as session:
            if (given := self._input(shared, None)) is None:
                return self._form(request, acc, shared, status=400)
            # A name is unique across the service: a taken one gets " (2)", never
            # overwriting someone else's subscription of that name.
            given.name = subscriptions.unique_name(session, given.name)
            sub = subscriptions.save(
                session, given, now=self.site.now(), organisation_id=acc.org.id
            )
            self._log(session, acc, sub, AuditAction.CREATED, None, organisations.snapshot(sub))
            session.commit()
        flash(request, "saved")
        return redirect(acc.base)

    async def edit(self, request: Request) -> Response:
        """The form of a stored shared subscription."""
        acc = access(self.site, request, least=Role.EDITOR)
        with self.site.session() as session:
            sub = _shared(session, acc, request)
        return self._form(request, acc, orgs_form.of(sub), sub)

    async def update(self, request: Request) -> Response:
        """Save the edited subscription; log the fields before and after."""
        acc = access(self.site, request, least=Role.EDITOR)
        shared = orgs_form.read(await checked_form(request), self.site.agent.notifiers)
        with self.site.session() as session:
            sub = _shared(session, acc, request)
            if not shared.ok:
                return self._form(request, acc, shared, sub, status=400)
            if (given := self._input(shared, sub)) is None:
                return self._form(request, acc, shared, sub, status=400)
            before = organisations.snapshot(sub)
            if given.name != sub.name:
                # ``save`` finds the subscription by name: rename the stored one first.
                given.name = subscriptions.unique_name(session, given.name)
                sub.name = given.name
                session.add(sub)
                session.flush()
            # confirmed=False leaves a stored subscription's active flag alone: an
            # edit does not resume a paused one.
            subscriptions.save(
                session, given, now=self.site.now(), confirmed=False, organisation_id=acc.org.id
            )
            if (after := organisations.snapshot(sub)) != before:
                self._log(session, acc, sub, AuditAction.EDITED, before, after)
            session.commit()
        flash(request, "saved")
        return redirect(acc.base)

    async def pause(self, request: Request) -> Response:
        """Stop the subscription's alerts until it is resumed."""
        return await self._set_active(request, False)

    async def resume(self, request: Request) -> Response:
        """Send the subscription's alerts again."""
        return await self._set_active(request, True)

    async def delete(self, request: Request) -> Response:
        """Delete the subscription; the log keeps what it was."""
        acc = access(self.site, request, least=Role.EDITOR)
        await checked_form(request)
        with self.site.session() as session:
            sub = _shared(session, acc, request)
            self._log(session, acc, sub, AuditAction.DELETED, organisations.snapshot(sub), None)
            subscriptions.delete(session, sub)
            session.commit()
        flash(request, "deleted")
        return redirect(acc.base)

    async def _set_active(self, request: Request, active: bool) -> Response:
        acc = access(self.site, request, least=Role.EDITOR)
        await checked_form(request)
        with self.site.session() as session:
            sub = _shared(session, acc, request)
            if sub.active != active:
                subscriptions.set_active(session, sub, active, now=self.site.now())
                action = AuditAction.RESUMED if active else AuditAction.PAUSED
                self._log(session, acc, sub, action, {"active": not active}, {"active": active})
                session.commit()
        flash(request, "saved")
        return redirect(acc.base)

    @staticmethod
    def _input(shared: SharedForm, sub: Subscription | None) -> SubscriptionInput | None:
        """The form as input; ``None`` (the form says why) if the whole does not validate."""
        try:
            return orgs_form.to_subscription_input(shared, sub)
        except ValueError:
            shared.errors[""] = Problem.INVALID
            return None

    def _log(
        self,
        session: Session,
        acc: Access,
        sub: Subscription,
        action: AuditAction,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None:
        accounts.record(
            session,
            actor=acc.actor,
            action=action,
            now=self.site.now(),
            organisation_id=acc.org.id,
            subscription_id=sub.id,
            subject=sub.name,
            before=before,
            after=after,
        )

    def _form(
        self,
        request: Request,
        acc: Access,
        shared: SharedForm,
        sub: Subscription | None = None,
        *,
        status: int = 200,
    ) -> Response:
        values = {
            "acc": acc,
            "shared": shared,
            "form": shared.rule,
            "sub": sub,
            "choices": channel_choices(self.site),
            "group_links": group_links(self.site, sub) if sub is not None else [],
            "cadences": subscriptions.CADENCES,
            "problems": {name: problem.value for name, problem in shared.errors.items()},
            "invalid": Problem.INVALID.value,
        }
        return self.site.pages.render(request, "orgs/subscription.html", values, status=status)


def _shared(session: Session, acc: Access, request: Request) -> Subscription:
    """The organisation's subscription named in the URL; 404 for any other."""
    sub = subscriptions.by_public_id(session, str(request.path_params["public_id"]))
    if sub is None or sub.organisation_id != acc.org.id:
        raise HTTPException(404, "No such shared subscription.")
    return sub
