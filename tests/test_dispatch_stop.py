"""A dispatch run stopped while a claim is under way gives what it claimed back at once.

On a database server claims run in a thread (``agent.sending``), so a stop
can come while one is waiting on the server. Without giving the rows back
they would stay leased to a run that no longer exists, and wait out
``delivery_lease`` before anyone sent them. Real parts: the run's PostgreSQL,
an aiosmtpd server, the CKAN fake.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from agent import subscriptions
from agent.config import build_config
from agent.models import Delivery
from agent.sending import STOPPED
from agent.service import Agent
from tests import databases
from tests.conftest import ROOT, serve
from tests.fakes import ckan
from tests.fakes.smtp import Mailbox, smtp_in_thread
from tests.samples import Clock
from tests.service import SIGNING_KEY

pytestmark = pytest.mark.skipif(
    databases.BACKEND is not databases.Backend.POSTGRESQL,
    reason="claims run in a thread on a database server only",
)

NOW = datetime(2017, 7, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[tuple[Agent, Mailbox]]:
    with serve(ckan.build_app()) as source, smtp_in_thread() as mailbox:
        config = {
            "agent": {
                "database_url": databases.url(tmp_path),
                "templates_dir": str(ROOT / "templates"),
                "signing_key": SIGNING_KEY,
                "hourly_cap": 0,
            },
            "notifiers": {"email": {"host": "127.0.0.1", "port": mailbox.port}},
            "sources": {
                "tenders": {"kind": "ckan", "base_url": source, "alert_on_first_poll": True}
            },
        }
        opened = Agent.open(build_config(config, base_dir=tmp_path), clock=Clock(NOW))
        async with opened as agent:
            with Session(agent.db) as session:
                given = {
                    "name": "team",
                    "channels": ["email"],
                    "email": "team@ngo.example",
                    "kinds": ["tender"],
                }
                model = subscriptions.SubscriptionInput.model_validate(given)
                subscriptions.save(session, model, now=NOW)
                session.commit()
            assert (await agent.poll("tenders")).deliveries
            yield agent, mailbox


def _statuses(agent: Agent) -> list[tuple[str, str | None]]:
    with Session(agent.db) as session:
        rows = session.exec(select(Delivery).order_by(col(Delivery.id))).all()
        return [(row.status, row.last_error) for row in rows]


async def test_a_claim_cut_off_by_a_stop_gives_its_alerts_back(
    agent: tuple[Agent, Mailbox],
) -> None:
    service, mailbox = agent
    with service.db.connect() as blocker:
        # The claim's first read (the channels' pauses) waits behind this lock.
        blocker.execute(sa.text("LOCK TABLE lease IN ACCESS EXCLUSIVE MODE"))
        run = asyncio.create_task(service.dispatch())
        await asyncio.sleep(0.5)
        run.cancel()
        await asyncio.sleep(0.2)
        blocker.commit()  # the claim goes on in its thread, then gives its rows back
    with pytest.raises(asyncio.CancelledError):
        await run

    statuses = _statuses(service)
    assert statuses
    assert set(statuses) == {("retrying", STOPPED)}
    assert not mailbox.messages

    result = await service.dispatch()  # due at once, not after the lease
    assert result.sent == len(statuses)
    assert {status for status, _ in _statuses(service)} == {"sent"}
    assert len(mailbox.messages) == 1
