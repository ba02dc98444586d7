"""Logins, organisations, members and roles, and the audit log, on a real database."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session

from agent import accounts, organisations
from agent import db as database
from agent.accounts import AuditAction, Organisation, Role, User
from agent.errors import AgentError
from agent.organisations import OrgError, OrgProblem
from tests import databases
from tests.service import user_env

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PASSWORD = "a long enough password"


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    engine = database.connect(databases.url(tmp_path))
    database.init(engine)
    with Session(engine, expire_on_commit=False) as opened:
        yield opened
    engine.dispose()


def user(session: Session, name: str, *, admin: bool = False) -> User:
    return accounts.create_user(session, f"{name}@ngo.example", PASSWORD, now=NOW, admin=admin)


def ngo(session: Session) -> Organisation:
    """``ngo``, owned by owner@, with editor@ and viewer@."""
    owner = user(session, "owner")
    org = organisations.create_organisation(
        session, " Welfare   NGO ", "ngo", owner.email, actor="cli", now=NOW
    )
    organisations.add_member(
        session, org, user(session, "editor"), Role.EDITOR, actor=owner.email, now=NOW
    )
    organisations.add_member(
        session, org, user(session, "viewer"), Role.VIEWER, actor=owner.email, now=NOW
    )
    return org


def test_passwords_are_hashed_checked_and_long_enough(session: Session) -> None:
    made = user(session, "Dana")
    assert made.email == "dana@ngo.example"
    assert PASSWORD not in made.password_hash
    assert accounts.authenticate(session, "DANA@ngo.example", PASSWORD, now=NOW) == made
    assert accounts.authenticate(session, "dana@ngo.example", "wrong password!", now=NOW) is None
    assert accounts.authenticate(session, "nobody@ngo.example", PASSWORD, now=NOW) is None
    with pytest.raises(AgentError, match="at least 12"):
        accounts.create_user(session, "x@ngo.example", "short", now=NOW)
    with pytest.raises(AgentError, match="not an e-mail"):
        accounts.create_user(session, "not-an-address", PASSWORD, now=NOW)


def test_an_organisation_starts_with_its_owner_and_logs_it(session: Session) -> None:
    org = ngo(session)
    assert (org.name, org.slug) == ("Welfare NGO", "ngo")
    assert organisations.organisation_by_slug(session, "ngo") == org
    owner = accounts.user_by_email(session, "owner@ngo.example")
    assert owner is not None
    assert accounts.role_of(session, owner, org.id or 0) is Role.OWNER
    entries, total = organisations.audit_log(session, org.id or 0)
    assert total == 3
    first = entries[-1]
    assert (first.action, first.actor, first.subject) == ("member_added", "cli", owner.email)
    assert first.after == {"email": owner.email, "role": "owner"}
    assert first.before is None


@pytest.mark.parametrize(
    ("name", "slug", "owner", "problem"),
    [
        ("NGO", "Has Capitals", "owner@ngo.example", OrgProblem.BAD_SLUG),
        ("NGO", "trailing-", "owner@ngo.example", OrgProblem.BAD_SLUG),
        ("NGO", "a--b", "owner@ngo.example", OrgProblem.BAD_SLUG),
        ("NGO", "x" * 61, "owner@ngo.example", OrgProblem.BAD_SLUG),
        ("NGO", "עמותה", "owner@ngo.example", OrgProblem.BAD_SLUG),
        ("   ", "fine", "owner@ngo.example", OrgProblem.BAD_NAME),
        ("NGO", "ngo", "owner@ngo.example", OrgProblem.SLUG_TAKEN),
        ("NGO", "fine", "nobody@ngo.example", OrgProblem.NO_SUCH_USER),
    ],
)
def test_an_organisation_needs_a_name_a_free_slug_and_an_existing_owner(
    session: Session, name: str, slug: str, owner: str, problem: OrgProblem
) -> None:
    ngo(session)
    with pytest.raises(OrgError) as raised:
        organisations.create_organisation(session, name, slug, owner, actor="cli", now=NOW)
    assert raised.value.problem is problem


def test_members_are_listed_owners_first_and_each_sees_their_organisations(
    session: Session,
) -> None:
    org = ngo(session)
    other = organisations.create_organisation(
        session, "Another", "another", "viewer@ngo.example", actor="cli", now=NOW
    )
    listed = [
        (u.email.split("@")[0], role) for u, role in organisations.members(session, org.id or 0)
    ]
    assert listed == [("owner", Role.OWNER), ("editor", Role.EDITOR), ("viewer", Role.VIEWER)]
    viewer = accounts.user_by_email(session, "viewer@ngo.example")
    assert viewer is not None
    assert organisations.organisations_of(session, viewer) == [
        (other, Role.OWNER),
        (org, Role.VIEWER),
    ]
    assert organisations.organisations_of(session, user(session, "stranger")) == []
    admin = user(session, "admin", admin=True)
    assert organisations.organisations_of(session, admin) == [(other, None), (org, None)]
    assert accounts.role_of(session, admin, org.id or 0) is Role.OWNER


def test_roles_change_and_members_leave_but_the_last_owner_stays(session: Session) -> None:
    org = ngo(session)
    owner, editor = (
        accounts.user_by_email(session, f"{n}@ngo.example") for n in ("owner", "editor")
    )
    assert owner is not None
    assert editor is not None
    with pytest.raises(OrgError) as removed:
        organisations.remove_member(session, org, owner, actor="x", now=NOW)
    with pytest.raises(OrgError) as demoted:
        organisations.change_role(session, org, owner, Role.EDITOR, actor="x", now=NOW)
    assert removed.value.problem is demoted.value.problem is OrgProblem.LAST_OWNER
    later = NOW + timedelta(hours=1)
    organisations.change_role(session, org, editor, Role.OWNER, actor=owner.email, now=later)
    organisations.change_role(
        session, org, editor, Role.OWNER, actor=owner.email, now=later
    )  # no-op
    organisations.remove_member(session, org, owner, actor=editor.email, now=later)
    assert accounts.role_of(session, owner, org.id or 0) is None
    with pytest.raises(OrgError) as raised:
        organisations.remove_member(session, org, owner, actor=editor.email, now=later)
    assert raised.value.problem is OrgProblem.NOT_MEMBER
    with pytest.raises(OrgError) as again:
        organisations.add_member_by_email(
            session, org, "editor@ngo.example", Role.VIEWER, actor="x", now=later
        )
    assert again.value.problem is OrgProblem.ALREADY_MEMBER
    entries, total = organisations.audit_log(session, org.id or 0, limit=2)
    assert total == 5
    assert [(e.action, e.actor) for e in entries] == [
        (AuditAction.MEMBER_REMOVED, editor.email),
        (AuditAction.ROLE_CHANGED, owner.email),
    ]
    assert organisations.changes(entries[1]) == {"role": ("editor", "owner")}
    assert organisations.changes(entries[0]) == {
        "email": ("owner@ngo.example", None),
        "role": ("owner", None),
    }


def test_the_log_pages_newest_first_and_changes_name_every_differing_field(
    session: Session,
) -> None:
    org = ngo(session)
    for minute in range(5):
        accounts.record(
            session,
            actor="editor@ngo.example",
            action=AuditAction.EDITED,
            now=NOW + timedelta(minutes=minute),
            organisation_id=org.id,
            subject=f"edit {minute}",
            before={"query": "a", "kinds": ["tender"], "same": 1},
            after={"query": "b", "amount_min": 5.0, "same": 1},
        )
    accounts.record(session, actor="cli", action=AuditAction.CREATED, now=NOW, organisation_id=None)
    page, total = organisations.audit_log(session, org.id or 0, offset=1, limit=2)
    assert total == 8
    assert [e.subject for e in page] == ["edit 3", "edit 2"]
    assert organisations.changes(page[0]) == {
        "query": ("a", "b"),
        "kinds": (["tender"], None),
        "amount_min": (None, 5.0),
    }


def test_the_cli_creates_an_organisation(tmp_path: Path) -> None:
    url = databases.url(tmp_path)
    (tmp_path / "config.toml").write_text(
        f'[agent]\ndatabase_url = "{url}"\n'
        '[sources.t]\nkind = "ckan"\nbase_url = "http://127.0.0.1:9"\ndataset = "tenders"\n',
        encoding="utf-8",
    )
    engine = database.connect(url)
    database.init(engine)
    with Session(engine) as session:
        user(session, "owner")
        session.commit()
    args = ("admin", "create-org", "ngo", "Welfare NGO", "--owner")
    done = create_org(tmp_path, *args, "Owner@ngo.example")
    assert done.returncode == 0, done.stderr
    assert "/orgs/ngo: Welfare NGO, owned by owner@ngo.example" in done.stdout
    again = create_org(tmp_path, *args, "owner@ngo.example")
    assert again.returncode == 1
    assert again.stderr.strip() == "error: an organisation already has the address 'ngo'"
    with Session(engine) as session:
        found = organisations.organisation_by_slug(session, "ngo")
        assert found is not None
        assert [e.actor for e in organisations.audit_log(session, found.id or 0)[0]] == ["cli"]
    engine.dispose()


def create_org(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``smart-agent ARGS`` with ``agent.cli_orgs`` registered, as ``main()`` registers it."""
    code = "import agent.cli_orgs; from agent.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=folder,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
