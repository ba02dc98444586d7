"""The same code on a real PostgreSQL server: migrations, a poll, the outbox, the site.

The server is Debian's, started by the ``postgres_server`` fixture
(``tests/postgres.py``); each test gets an empty database of its own.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlmodel import Session, SQLModel, func, select

from agent import db, subscriptions
from agent.config import build_config
from agent.models import Delivery, DeliveryStatus, StoredItem
from agent.service import Agent
from agent.web import create_app
from tests.conftest import serve
from tests.fakes import ckan
from tests.test_migrations import differences

NOW = datetime(2017, 7, 1, 9, 0, tzinfo=UTC)


def test_migrations_give_the_models_schema_and_run_once(postgres_url: str) -> None:
    engine = db.connect(postgres_url)
    try:
        db.init(engine)
        assert differences(engine, SQLModel.metadata) == []
        db.init(engine)  # an up-to-date database is left as it is
        with engine.connect() as connection:
            revision = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
            assert len(revision.all()) == 1
    finally:
        engine.dispose()


async def test_a_poll_fans_out_and_the_outbox_sends_once(postgres_url: str, tmp_path: Path) -> None:
    with serve(ckan.build_app()) as source:
        config = build_config(
            {
                "agent": {"database_url": postgres_url, "signing_key": "k"},
                "sources": {
                    "tenders": {"kind": "ckan", "base_url": source, "alert_on_first_poll": True}
                },
            },
            base_dir=tmp_path,
        )
        async with Agent.open(config, clock=lambda: NOW) as agent:
            with Session(agent.db) as session:
                given = subscriptions.SubscriptionInput.model_validate(
                    {"name": "services", "query": "שירותי", "channels": ["rss"]}
                )
                subscriptions.save(session, given, now=NOW)
                session.commit()
            [first] = await agent.poll_all()
            [again] = await agent.poll_all()  # the same answer: nothing new, nothing queued
            sent = await agent.dispatch()
            with Session(agent.db) as session:
                items = session.exec(select(func.count()).select_from(StoredItem)).one()
                statuses = session.exec(select(Delivery.status)).all()
            with serve(create_app(agent)) as url:
                async with httpx.AsyncClient(base_url=url) as http:
                    pages = {
                        path: (await http.get(path)).status_code
                        for path in ("/", "/items", "/status")
                    }
                    found = await http.get("/api/v1/items", params={"query": "שירותי"})
                    api = found.json()
    assert (first.items, first.deliveries, again.deliveries) == (21, len(statuses), 0)
    assert items == 21
    assert sent.sent == len(statuses) > 0
    assert set(statuses) == {DeliveryStatus.SENT}
    assert pages == {"/": 200, "/items": 200, "/status": 200}
    # One alert per event: an item can have two (new, then closing soon), the API lists it once.
    assert 0 < len(api["items"]) <= len(statuses)
