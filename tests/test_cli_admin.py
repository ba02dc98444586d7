"""``smart-agent admin``: the first admin and API keys, made at a terminal."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from sqlmodel import Session, create_engine, select

from agent.accounts import ApiKey, User, api_key_valid
from tests import databases
from tests.service import assert_clean, user_env
from tests.user import User as Terminal
from tests.user import config_text


def typed(folder: Path, *args: str, answers: str) -> subprocess.CompletedProcess[str]:
    """Run ``smart-agent ARGS`` typing ``answers`` at its prompts."""
    result = subprocess.run(
        [sys.executable, "-m", "agent", *args],
        cwd=folder,
        env=user_env(),
        input=answers,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_clean(result.stderr)
    return result


def configured(folder: Path) -> str:
    """Write ``folder/config.toml`` with a fresh database; return the database's URL."""
    url = databases.url(folder)
    (folder / "config.toml").write_text(config_text(url), encoding="utf-8")
    return url


@contextlib.contextmanager
def stored(url: str) -> Iterator[Session]:
    """A session on the database the commands wrote."""
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            yield session
    finally:
        engine.dispose()


def test_create_user_reads_the_password_from_stdin_and_stores_only_its_hash(tmp_path: Path) -> None:
    url = configured(tmp_path)
    password = "a long enough passphrase"
    result = typed(
        tmp_path, "admin", "create-user", "Admin@NGO.example", "--password-stdin",
        answers=f"{password}\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "admin@ngo.example can log in at /login (admin)" in result.stdout
    with stored(url) as session:
        [user] = session.exec(select(User)).all()
    assert user.is_admin
    assert user.password_hash.startswith("$argon2id$")
    assert password not in user.password_hash


def test_a_short_password_is_refused_with_a_reason(tmp_path: Path) -> None:
    configured(tmp_path)
    result = typed(
        tmp_path, "admin", "create-user", "a@b.example", "--password-stdin", answers="short\n"
    )
    assert result.returncode == 1
    assert "at least 12 characters" in result.stderr


def test_an_api_key_is_shown_once_and_stored_as_a_digest(tmp_path: Path) -> None:
    url = configured(tmp_path)
    result = Terminal(tmp_path).run("admin", "create-api-key", "monitoring")
    key = result.stdout.strip()
    assert key.startswith("sa_")
    with stored(url) as session:
        [row] = session.exec(select(ApiKey)).all()
        assert key not in row.digest
        assert api_key_valid(session, key)
        assert not api_key_valid(session, key + "x")


def test_a_revoked_api_key_stops_working_and_is_listed_as_revoked(tmp_path: Path) -> None:
    url = configured(tmp_path)
    terminal = Terminal(tmp_path)
    key = terminal.run("admin", "create-api-key", "reports").stdout.strip()
    assert "reports\tmade " in terminal.run("admin", "api-keys").stdout
    assert (
        "revoked 1 key(s) called reports"
        in terminal.run("admin", "revoke-api-key", "reports").stdout
    )
    with stored(url) as session:
        assert not api_key_valid(session, key)
    assert "\trevoked " in terminal.run("admin", "api-keys").stdout
    again = terminal.run("admin", "revoke-api-key", "reports", code=1)
    assert "no working API key is called 'reports'" in again.stderr
