"""People with a login (admins, organisations' members), API keys, the audit log's table.

Subscribers need no account: their signed links are their key. A login is
for the admins who run the service and for the members of an organisation
(an NGO) that shares subscriptions. Passwords are hashed with Argon2id
(argon2-cffi); API keys are random and stored only as their SHA-256.

Every change to a shared subscription is written to ``AuditEntry`` with who
made it and when (``record``). What organisations and their members may do is
``agent.organisations``.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Column, Session, SQLModel, UniqueConstraint, col, select
from sqlmodel import Field as SQLField

from agent.errors import AgentError
from agent.models import UtcDateTime

#: Shorter passwords are refused (NIST SP 800-63B asks for at least 8; we ask 12).
MIN_PASSWORD_LENGTH = 12

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """A stand-in hash to verify for an unknown e-mail: as slow as a wrong password."""
    # Made on first use: hashing costs every process that imports this module
    # (each command, each worker) a third of a second and 64 MiB otherwise.
    return _hasher.hash(secrets.token_urlsafe(16))


class Role(StrEnum):
    """What a member may do in an organisation."""

    #: Everything an editor may, and manage the members.
    OWNER = "owner"
    #: Create, edit, pause and delete the shared subscriptions.
    EDITOR = "editor"
    #: See the shared subscriptions and their log.
    VIEWER = "viewer"

    def may_edit(self) -> bool:
        """Whether this role may change shared subscriptions."""
        return self in (Role.OWNER, Role.EDITOR)


class AuditAction(StrEnum):
    """What an audit entry records."""

    CREATED = "created"
    EDITED = "edited"
    PAUSED = "paused"
    RESUMED = "resumed"
    DELETED = "deleted"
    MEMBER_ADDED = "member_added"
    ROLE_CHANGED = "role_changed"
    MEMBER_REMOVED = "member_removed"


def _utc(*, nullable: bool = True) -> Any:
    return SQLField(default=None, sa_column=Column(UtcDateTime(), nullable=nullable))


class User(SQLModel, table=True):
    """Someone who logs in: an admin, or a member of an organisation."""

    id: int | None = SQLField(default=None, primary_key=True)
    email: str = SQLField(unique=True, index=True)
    password_hash: str
    is_admin: bool = False
    created_at: datetime = _utc(nullable=False)
    last_login_at: datetime | None = _utc()


class Organisation(SQLModel, table=True):
    """An NGO or a team that owns shared subscriptions."""

    id: int | None = SQLField(default=None, primary_key=True)
    #: Its address on the site: ``/orgs/<slug>``.
    slug: str = SQLField(unique=True, index=True)
    name: str
    created_at: datetime = _utc(nullable=False)


class Membership(SQLModel, table=True):
    """A user's role in an organisation."""

    __table_args__ = (UniqueConstraint("organisation_id", "user_id"),)

    id: int | None = SQLField(default=None, primary_key=True)
    organisation_id: int = SQLField(foreign_key="organisation.id", index=True)
    user_id: int = SQLField(foreign_key="user.id", index=True)
    #: A ``Role``.
    role: str = Role.VIEWER


class AuditEntry(SQLModel, table=True):
    """Who changed what, and when: kept after the subscription is gone."""

    __tablename__ = "audit_entry"

    id: int | None = SQLField(default=None, primary_key=True)
    organisation_id: int | None = SQLField(default=None, index=True)
    subscription_id: int | None = SQLField(default=None, index=True)
    #: The subscription's name then (it may be renamed or deleted later).
    subject: str = ""
    #: The user's e-mail, or ``subscriber`` for a signed link, or ``cli``.
    actor: str
    #: An ``AuditAction``.
    action: str
    before: dict[str, Any] | None = SQLField(default=None, sa_column=Column(sa.JSON))
    after: dict[str, Any] | None = SQLField(default=None, sa_column=Column(sa.JSON))
    at: datetime = _utc(nullable=False)


class ApiKey(SQLModel, table=True):
    """A key for the admin JSON API; only its SHA-256 is stored."""

    __tablename__ = "api_key"

    id: int | None = SQLField(default=None, primary_key=True)
    name: str
    digest: str = SQLField(unique=True, index=True)
    created_at: datetime = _utc(nullable=False)
    revoked_at: datetime | None = _utc()


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def normalise_email(email: str) -> str:
    """Return ``email`` trimmed and lower-cased; raise ``AgentError`` when it is not one."""
    cleaned = email.strip().lower()
    if not _EMAIL.fullmatch(cleaned):
        raise AgentError(f"{email!r} is not an e-mail address")
    return cleaned


def create_user(
    session: Session, email: str, password: str, *, now: datetime, admin: bool = False
) -> User:
    """Create a user, or set a new password (and admin flag) for an existing one."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AgentError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    address = normalise_email(email)
    user = user_by_email(session, address)
    if user is None:
        user = User(email=address, password_hash="", created_at=now)
    user.password_hash = _hasher.hash(password)
    user.is_admin = user.is_admin or admin
    session.add(user)
    session.flush()
    return user


def user_by_email(session: Session, email: str) -> User | None:
    """The user with this e-mail address, if any."""
    address = email.strip().lower()
    return session.exec(select(User).where(User.email == address)).first()


def authenticate(session: Session, email: str, password: str, *, now: datetime) -> User | None:
    """The user whose password this is, or ``None``; rehashes outdated hashes."""
    user = user_by_email(session, email)
    try:
        _hasher.verify(user.password_hash if user else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = now
    session.add(user)
    return user


def role_of(session: Session, user: User, organisation_id: int) -> Role | None:
    """``user``'s role in the organisation; admins are owners everywhere."""
    if user.is_admin:
        return Role.OWNER
    found = session.exec(
        select(Membership.role).where(
            Membership.organisation_id == organisation_id, Membership.user_id == user.id
        )
    ).first()
    return Role(found) if found else None


def create_api_key(session: Session, name: str, *, now: datetime) -> str:
    """Make an API key called ``name``; return it (it is shown only this once)."""
    key = f"sa_{secrets.token_urlsafe(32)}"
    session.add(ApiKey(name=name, digest=_digest(key), created_at=now))
    session.flush()
    return key


def api_key_valid(session: Session, key: str) -> bool:
    """Whether ``key`` is an API key that was made here and not revoked."""
    found = session.exec(select(ApiKey).where(ApiKey.digest == _digest(key))).first()
    return found is not None and found.revoked_at is None


def api_keys(session: Session) -> list[ApiKey]:
    """Every API key ever made (revoked ones too), oldest first."""
    return list(session.exec(select(ApiKey).order_by(col(ApiKey.id))))


def revoke_api_keys(session: Session, name: str, *, now: datetime) -> int:
    """Revoke the keys called ``name`` that still work; return how many."""
    found = session.exec(
        select(ApiKey).where(ApiKey.name == name, col(ApiKey.revoked_at).is_(None))
    ).all()
    for key in found:
        key.revoked_at = now
        session.add(key)
    return len(found)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def record(
    session: Session,
    *,
    actor: str,
    action: AuditAction,
    now: datetime,
    organisation_id: int | None = None,
    subscription_id: int | None = None,
    subject: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Write one audit entry (in the caller's transaction)."""
    entry = AuditEntry(
        organisation_id=organisation_id,
        subscription_id=subscription_id,
        subject=subject,
        actor=actor,
        action=action,
        before=before,
        after=after,
        at=now,
    )
    session.add(entry)
    return entry
