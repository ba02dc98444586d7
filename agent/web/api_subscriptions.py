"""Showing, changing and deleting a subscription: shared by the subscriber's and the admin's API.

A change goes through ``SubscriptionInput`` like any other (the same checks
as the pages and files) and ``subscriptions.save``; it never confirms an
address: a subscription awaiting confirmation cannot be resumed (409).
Changes to an organisation's shared subscription are written to its audit log.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlmodel import Session

from agent import accounts, subscriptions
from agent.accounts import AuditAction
from agent.models import Subscription
from agent.rules import RuleSpec
from agent.subscriptions import SubscriptionInput
from agent.web.api_core import ApiError, compile_rule, field_errors, invalid
from agent.web.api_schemas_subs import AdminSubscriptionOut, SubscriptionOut, SubscriptionPatch
from agent.web.site import Site


def subscription_out(site: Site, sub: Subscription) -> SubscriptionOut:
    """A subscription as its subscriber sees it."""
    return SubscriptionOut.model_validate(_fields(site, sub))


def admin_out(site: Site, sub: Subscription) -> AdminSubscriptionOut:
    """A subscription as admins see it."""
    return AdminSubscriptionOut.model_validate(
        {**_fields(site, sub), "id": sub.id, "organisation_id": sub.organisation_id}
    )


def _fields(site: Site, sub: Subscription) -> dict[str, Any]:
    links = site.links
    return {
        "name": sub.name,
        "active": sub.active,
        "awaiting_confirmation": bool(sub.awaiting_confirmation),
        "channels": sub.channels,
        "addresses": sub.addresses or {},
        "language": sub.language,
        "cadence": sub.cadence,
        "cadences": sub.cadences or {},
        "timezone": sub.timezone,
        "digest_hour": sub.digest_hour,
        "quiet_hours": sub.quiet_hours,
        "rule": RuleSpec.model_validate(sub.rule),
        "created_at": sub.created_at,
        "updated_at": sub.updated_at,
        "feeds": {
            "atom": links.feed_url(sub),
            "rss": links.rss_url(sub),
            "ics": links.calendar_url(sub),
        },
    }


def edit(site: Site, sub_id: int, patch: SubscriptionPatch, *, actor: str) -> Subscription:
    """Apply ``patch`` to the subscription; 404, 409 or 422 when it cannot be."""
    with site.session() as session:
        sub = _get(session, sub_id)
        before = _summary(sub)
        given = _changed(sub, patch)
        compile_rule(given.rule, prefix="rule.")
        if given.name != sub.name:
            if subscriptions.by_name(session, given.name) is not None:
                raise ApiError(409, f"a subscription called {given.name!r} already exists")
            # ``save`` finds the subscription by name: rename the row first.
            sub.name = given.name
            session.flush()
        if patch.active and sub.awaiting_confirmation:
            raise ApiError(409, "the address has not confirmed yet: use the confirmation link")
        subscriptions.save(session, given, now=site.now(), confirmed=False)
        if patch.active is not None:
            subscriptions.set_active(session, sub, patch.active, now=site.now())
        _audit_edit(site, session, sub, before, actor)
        session.commit()
        return sub


def remove(site: Site, sub_id: int, *, actor: str) -> None:
    """Delete the subscription with its deliveries; 404 if it is gone already."""
    with site.session() as session:
        sub = _get(session, sub_id)
        _audit(site, session, sub, AuditAction.DELETED, actor, _summary(sub), None)
        subscriptions.delete(session, sub)
        session.commit()


def _get(session: Session, sub_id: int) -> Subscription:
    sub = session.get(Subscription, sub_id)
    if sub is None:
        raise ApiError(404, "no such subscription")
    return sub


def _changed(sub: Subscription, patch: SubscriptionPatch) -> SubscriptionInput:
    """The subscription with the patch's fields, checked as a whole; 422 otherwise."""
    changes = patch.model_dump(exclude_none=True, exclude={"active"})
    try:
        current = subscriptions.to_input(sub).model_dump()
        return SubscriptionInput.model_validate({**current, **changes})
    except ValidationError as exc:
        raise invalid(field_errors(exc)) from None


def _summary(sub: Subscription) -> dict[str, Any]:
    """What the audit log keeps of a subscription before and after a change."""
    return {
        "name": sub.name,
        "active": sub.active,
        "language": sub.language,
        "cadence": sub.cadence,
        "rule": dict(sub.rule),
    }


def _audit_edit(
    site: Site, session: Session, sub: Subscription, before: dict[str, Any], actor: str
) -> None:
    after = _summary(sub)
    if {k: v for k, v in before.items() if k != "active"} != {
        k: v for k, v in after.items() if k != "active"
    }:
        _audit(site, session, sub, AuditAction.EDITED, actor, before, after)
    if before["active"] != after["active"]:
        action = AuditAction.RESUMED if after["active"] else AuditAction.PAUSED
        _audit(site, session, sub, action, actor, before, after)


def _audit(
    site: Site,
    session: Session,
    sub: Subscription,
    action: AuditAction,
    actor: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """Record a change to an organisation's shared subscription (a person's own: nothing)."""
    if sub.organisation_id is None:
        return
    accounts.record(
        session,
        actor=actor,
        action=action,
        now=site.now(),
        organisation_id=sub.organisation_id,
        subscription_id=sub.id,
        subject=sub.name,
        before=before,
        after=after,
    )
