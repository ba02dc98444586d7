"""Organisations, their members and roles, and the log of what they changed.

An organisation (an NGO, a team) owns shared subscriptions; each member has a
``Role``. Every change to the members is written to the audit log here, in the
caller's transaction; the pages log changes to shared subscriptions with
``accounts.record``. A change that breaks a rule (a bad address for the
organisation, the last owner leaving) raises ``OrgError`` naming the rule.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from agent.accounts import (
    AuditAction,
    AuditEntry,
    Membership,
    Organisation,
    Role,
    User,
    record,
    user_by_email,
)
from agent.errors import AgentError
from agent.models import Subscription
from agent.subscriptions import ADDRESS_FIELDS

#: An organisation's address (``/orgs/<slug>``): lowercase letters, digits, single hyphens.
SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
MAX_SLUG_LENGTH = 60
MAX_ORG_NAME_LENGTH = 200


class OrgProblem(StrEnum):
    """Why a change to an organisation or to its members was refused."""

    BAD_SLUG = "bad_slug"
    SLUG_TAKEN = "slug_taken"
    BAD_NAME = "bad_name"
    NO_SUCH_USER = "no_such_user"
    ALREADY_MEMBER = "already_member"
    NOT_MEMBER = "not_member"
    LAST_OWNER = "last_owner"


class OrgError(AgentError):
    """A change to an organisation that cannot be made; ``problem`` says which rule it broke."""

    def __init__(self, problem: OrgProblem, message: str) -> None:
        self.problem = problem
        super().__init__(message)


def create_organisation(
    session: Session, name: str, slug: str, owner_email: str, *, actor: str, now: datetime
) -> Organisation:
    """Create an organisation with its first owner (an existing login); log the owner."""
    cleaned = " ".join(name.split())
    if not cleaned or len(cleaned) > MAX_ORG_NAME_LENGTH:
        raise OrgError(
            OrgProblem.BAD_NAME, f"the name must have 1 to {MAX_ORG_NAME_LENGTH} characters"
        )
    if len(slug) > MAX_SLUG_LENGTH or not SLUG.fullmatch(slug):
        raise OrgError(
            OrgProblem.BAD_SLUG,
            f"{slug!r}: use lowercase letters, digits and hyphens (at most {MAX_SLUG_LENGTH})",
        )
    if organisation_by_slug(session, slug) is not None:
        raise OrgError(OrgProblem.SLUG_TAKEN, f"an organisation already has the address {slug!r}")
    owner = _existing_user(session, owner_email)
    org = Organisation(slug=slug, name=cleaned, created_at=now)
    session.add(org)
    session.flush()
    add_member(session, org, owner, Role.OWNER, actor=actor, now=now)
    return org


def organisation_by_slug(session: Session, slug: str) -> Organisation | None:
    """The organisation at ``/orgs/<slug>``, if any."""
    return session.exec(select(Organisation).where(Organisation.slug == slug)).first()


def organisations_of(session: Session, user: User) -> list[tuple[Organisation, Role | None]]:
    """The user's organisations with their role, by name; an admin gets every one.

    An admin who is not a member of an organisation gets it with ``None``.
    """
    query = (
        select(Organisation, Membership.role)
        .join(
            Membership,
            sa.and_(
                col(Membership.organisation_id) == Organisation.id,
                col(Membership.user_id) == user.id,
            ),
            isouter=user.is_admin,
        )
        .order_by(Organisation.name)
    )
    return [(org, Role(role) if role else None) for org, role in session.exec(query)]


def members(session: Session, organisation_id: int) -> list[tuple[User, Role]]:
    """An organisation's members with their roles, owners first, then by e-mail."""
    rows = session.exec(
        select(User, Membership.role)
        .join(Membership, col(Membership.user_id) == User.id)
        .where(Membership.organisation_id == organisation_id)
        .order_by(User.email)
    )
    found = [(user, Role(role)) for user, role in rows]
    order = list(Role)
    return sorted(found, key=lambda pair: order.index(pair[1]))


def add_member(
    session: Session, org: Organisation, user: User, role: Role, *, actor: str, now: datetime
) -> Membership:
    """Give ``user`` a role in ``org``; logged as ``member_added``."""
    if _membership(session, org, user) is not None:
        raise OrgError(OrgProblem.ALREADY_MEMBER, f"{user.email} is already a member")
    membership = Membership(organisation_id=_id(org), user_id=_id(user), role=role)
    session.add(membership)
    _record_member(session, org, user, AuditAction.MEMBER_ADDED, None, role, actor, now)
    session.flush()
    return membership


def add_member_by_email(
    session: Session, org: Organisation, email: str, role: Role, *, actor: str, now: datetime
) -> Membership:
    """``add_member`` for the login with this e-mail address (it must exist)."""
    return add_member(session, org, _existing_user(session, email), role, actor=actor, now=now)


def change_role(
    session: Session, org: Organisation, user: User, role: Role, *, actor: str, now: datetime
) -> None:
    """Change ``user``'s role in ``org`` (an organisation keeps at least one owner)."""
    membership = _member(session, org, user)
    old = Role(membership.role)
    if old == role:
        return
    if old is Role.OWNER:
        _keep_an_owner(session, org)
    membership.role = role
    session.add(membership)
    _record_member(session, org, user, AuditAction.ROLE_CHANGED, old, role, actor, now)
    session.flush()


def remove_member(
    session: Session, org: Organisation, user: User, *, actor: str, now: datetime
) -> None:
    """Take ``user`` out of ``org`` (never its last owner)."""
    membership = _member(session, org, user)
    old = Role(membership.role)
    if old is Role.OWNER:
        _keep_an_owner(session, org)
    session.delete(membership)
    _record_member(session, org, user, AuditAction.MEMBER_REMOVED, old, None, actor, now)
    session.flush()


def audit_log(
    session: Session, organisation_id: int, *, offset: int = 0, limit: int = 20
) -> tuple[list[AuditEntry], int]:
    """A page of an organisation's log, newest first, and how many entries it has."""
    where = AuditEntry.organisation_id == organisation_id
    total = session.exec(select(sa.func.count()).select_from(AuditEntry).where(where)).one()
    entries = session.exec(
        select(AuditEntry)
        .where(where)
        .order_by(col(AuditEntry.at).desc(), col(AuditEntry.id).desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return list(entries), int(total)


def changes(entry: AuditEntry) -> dict[str, tuple[Any, Any]]:
    """The fields an entry changed, with their values before and after, in a stable order."""
    before, after = entry.before or {}, entry.after or {}
    names = list(dict.fromkeys([*before, *after]))
    return {
        name: (before.get(name), after.get(name))
        for name in names
        if before.get(name) != after.get(name)
    }


def _existing_user(session: Session, email: str) -> User:
    user = user_by_email(session, email)
    if user is None:
        raise OrgError(OrgProblem.NO_SUCH_USER, f"no login has the e-mail address {email!r}")
    return user


def _membership(session: Session, org: Organisation, user: User) -> Membership | None:
    return session.exec(
        select(Membership).where(
            Membership.organisation_id == org.id, Membership.user_id == user.id
        )
    ).first()


def _member(session: Session, org: Organisation, user: User) -> Membership:
    membership = _membership(session, org, user)
    if membership is None:
        raise OrgError(OrgProblem.NOT_MEMBER, f"{user.email} is not a member of {org.slug}")
    return membership


def _keep_an_owner(session: Session, org: Organisation) -> None:
    """Refuse to take away the role of an organisation's only owner."""
    owners = session.exec(
        select(sa.func.count())
        .select_from(Membership)
        .where(Membership.organisation_id == org.id, Membership.role == Role.OWNER)
    ).one()
    if owners <= 1:
        raise OrgError(OrgProblem.LAST_OWNER, f"{org.slug} must keep at least one owner")


def _record_member(
    session: Session,
    org: Organisation,
    user: User,
    action: AuditAction,
    old: Role | None,
    new: Role | None,
    actor: str,
    now: datetime,
) -> None:
    record(
        session,
        actor=actor,
        action=action,
        now=now,
        organisation_id=org.id,
        subject=user.email,
        before=None if old is None else {"email": user.email, "role": old.value},
        after=None if new is None else {"email": user.email, "role": new.value},
    )


def _id(row: Organisation | User) -> int:
    if row.id is None:
        raise ValueError(f"{row!r} is not saved yet")
    return row.id


def snapshot(sub: Subscription) -> dict[str, Any]:
    """The fields of a shared subscription the log keeps, flat."""
    addresses = sub.addresses or {}
    return {
        "name": sub.name,
        **(sub.rule or {}),
        "channels": list(sub.channels),
        **{field: addresses[name] for name, field in ADDRESS_FIELDS.items() if name in addresses},
        "language": sub.language,
        "cadence": sub.cadence,
        "active": sub.active,
    }
