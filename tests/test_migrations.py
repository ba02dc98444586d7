"""Alembic migrations: a new database gets the models' schema, an old one keeps its data.

``tests/data/previous-release/agent.db`` was made by the previous release's own
code (see its ``SOURCES.md``); the current ``smart-agent`` upgrades a copy of it.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from agent import db
from agent.errors import StorageError
from agent.migrations import baseline
from tests import databases
from tests.conftest import ROOT, serve
from tests.fakes import ckan
from tests.user import User, config_text

PREVIOUS = ROOT / "tests" / "data" / "previous-release" / "agent.db"
#: The newest revision: where ``init`` takes every database.
HEAD = ScriptDirectory(str(db.MIGRATIONS)).get_current_head()


def differences(engine: Engine, schema: sa.MetaData) -> list[Any]:
    """What Alembic's autogenerate would change to make the database match ``schema``."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, schema))


def tables_sql(path: Path) -> list[tuple[str, str]]:
    """Every table's and index's SQL, and the revision: the schema as SQLite keeps it."""
    with sqlite3.connect(path) as connection:
        found = connection.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()
        found += connection.execute(
            "SELECT 'revision', version_num FROM alembic_version"
        ).fetchall()
    connection.close()
    return found


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    made = db.connect(databases.url(tmp_path))
    yield made
    made.dispose()


def test_a_new_database_gets_exactly_the_models_schema(engine: Engine) -> None:
    db.init(engine)
    assert differences(engine, SQLModel.metadata) == []
    with engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == HEAD


@pytest.mark.sqlite_only("the previous release's database is an SQLite file")
def test_the_previous_release_made_exactly_the_baseline(tmp_path: Path) -> None:
    # Revision 0001 and what that release's create_all made are the same schema.
    shutil.copy(PREVIOUS, tmp_path / "a.db")
    made = sa.create_engine(f"sqlite:///{tmp_path / 'a.db'}")
    assert differences(made, baseline.metadata()) == []
    made.dispose()


@pytest.mark.sqlite_only("compares the schema as SQLite keeps it (sqlite_master)")
def test_running_init_twice_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    db.init(engine)
    first = tables_sql(tmp_path / "a.db")
    db.init(engine)
    assert tables_sql(tmp_path / "a.db") == first


def test_a_database_from_a_newer_release_is_refused(engine: Engine) -> None:
    db.init(engine)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(StorageError, match=r"cannot be migrated: Can't locate revision .*9999"):
        db.init(engine)
    if engine.dialect.name == "sqlite":
        # SQLite's migrations turn foreign keys off: the pool holds no connection left so.
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


# --- the previous release's database, upgraded by the current command ---------------


@pytest.fixture
def user(tmp_path: Path) -> Iterator[User]:
    (tmp_path / "var").mkdir()
    shutil.copy(PREVIOUS, tmp_path / "var" / "agent.db")
    with serve(ckan.build_app()) as url:
        source = f'[sources.tenders]\nkind = "ckan"\nbase_url = "{url}"\n'
        (tmp_path / "config.toml").write_text(
            config_text(f"sqlite:///{tmp_path / 'var' / 'agent.db'}", source), encoding="utf-8"
        )
        yield User(tmp_path)


def rows(path: Path, query: str) -> list[tuple[Any, ...]]:
    """The rows ``query`` finds in the SQLite file at ``path``."""
    with sqlite3.connect(path) as connection:
        found = connection.execute(query).fetchall()
    connection.close()
    return found


#: What the previous release stored (see SOURCES.md): read before and after the upgrade.
KEPT = {
    "items": "SELECT source, key, content_hash, first_seen_at FROM item ORDER BY id",
    "events": "SELECT item_id, type, dedup_key FROM event ORDER BY id",
    "subscriptions": "SELECT id, public_id, link_secret, name, rule, channels, addresses,"
    " cadence, feed_token, active FROM subscription ORDER BY id",
    "deliveries": "SELECT id, message_token, subscription_id, event_id, channel, status,"
    " sent_at, receipt FROM delivery ORDER BY id",
}


@pytest.mark.sqlite_only("the previous release's database is an SQLite file")
def test_the_previous_releases_database_is_upgraded_with_its_data(user: User) -> None:
    path = user.folder / "var" / "agent.db"
    before = {name: rows(path, query) for name, query in KEPT.items()}
    assert [len(found) for found in before.values()] == [21, 21, 2, 4]
    user.run("init")
    assert {name: rows(path, query) for name, query in KEPT.items()} == before
    upgraded = sa.create_engine(f"sqlite:///{path}")
    assert differences(upgraded, SQLModel.metadata) == []
    upgraded.dispose()
    assert rows(path, "SELECT version_num FROM alembic_version") == [(HEAD,)]
    assert rows(path, "SELECT awaiting_confirmation, organisation_id FROM subscription") == [
        (None, None),
        (None, None),
    ]
    listed = json.loads(user.run("subscriptions", "list", "--json").stdout)
    assert [s["name"] for s in listed] == ["staff", "cloud"]
    assert "tenders: ok" in user.run("run-once").stdout
    # The stored items were seen before: polling again finds them unchanged.
    assert rows(path, "SELECT count(*) FROM item") == [(21,)]
    assert rows(path, "SELECT count(*) FROM delivery") == [(4,)]


@pytest.mark.sqlite_only("SQLite's DDL outside a transaction is what is tested")
def test_an_upgrade_that_fails_halfway_leaves_the_database_as_it_was(user: User) -> None:
    path = user.folder / "var" / "agent.db"
    # Something in the way of the last revision's new table: every earlier
    # step succeeds, then that one fails.
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE lease (kept INTEGER)")
    connection.close()
    schema = "SELECT type, name, sql FROM sqlite_master ORDER BY type, name"
    before = rows(path, schema), {name: rows(path, query) for name, query in KEPT.items()}

    failed = user.run("init", code=1)

    assert "table lease already exists" in failed.stderr
    assert (rows(path, schema), {name: rows(path, q) for name, q in KEPT.items()}) == before
