"""The suite's own switch between SQLite and PostgreSQL (``tests.databases``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select

from agent import db
from agent.models import Subscription
from tests import databases, selection
from tests.databases import Backend


def test_the_variable_chooses_the_backend_and_sqlite_is_the_default() -> None:
    assert databases.chosen({}) is Backend.SQLITE
    assert databases.chosen({databases.VARIABLE: ""}) is Backend.SQLITE
    assert databases.chosen({databases.VARIABLE: " PostgreSQL "}) is Backend.POSTGRESQL
    with pytest.raises(pytest.UsageError, match="say sqlite or postgresql"):
        databases.chosen({databases.VARIABLE: "mysql"})


def test_sqlite_only_tests_are_skipped_elsewhere_saying_why() -> None:
    assert databases.sqlite_only_skip(("a lock file",), Backend.SQLITE) is None
    said = databases.sqlite_only_skip(("a lock file",), Backend.POSTGRESQL)
    assert said == "SQLite only: a lock file"
    with pytest.raises(pytest.UsageError, match="one reason"):
        databases.sqlite_only_skip((), Backend.POSTGRESQL)


@pytest.mark.sqlite_only("checks that the PostgreSQL run skips it")
def test_a_sqlite_only_test_runs_on_sqlite_alone() -> None:
    assert databases.BACKEND is Backend.SQLITE


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param(Backend.SQLITE, marks=pytest.mark.sqlite_only("the switch's SQLite side")),
        Backend.POSTGRESQL,
    ],
)
def test_each_url_is_a_fresh_database_the_agent_can_use(tmp_path: Path, backend: Backend) -> None:
    first = databases.url(tmp_path, "one.db", backend=backend)
    second = databases.url(tmp_path, "two.db", backend=backend)
    assert first != second
    assert first.startswith(
        {Backend.SQLITE: "sqlite:///", Backend.POSTGRESQL: "postgresql+"}[backend]
    )
    assert not databases.migrated(first)
    engine = db.connect(first)
    try:
        db.init(engine)
        with Session(engine) as session:
            assert session.exec(select(Subscription)).all() == []
    finally:
        engine.dispose()
    assert databases.migrated(first)
    assert not databases.migrated(second)


def test_the_postgresql_run_keeps_the_modules_that_can_ask_for_a_database() -> None:
    here = Path(__file__).parent
    assert selection.needs_database(here / "test_databases.py")  # itself
    assert selection.needs_database(here / "test_cli.py")  # through tests.user's config
    assert selection.needs_database(here / "test_web_public_browser.py")  # tests.browser
    assert selection.needs_database(here / "test_web_api_admin.py")  # another test module
    assert not selection.needs_database(here / "test_rules_parse.py")
    assert not selection.needs_database(here / "test_fresh_clone.py")  # conftest is not counted
