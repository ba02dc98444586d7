"""Retention: the periodic purge deletes old final deliveries and unused events, not what is due."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlmodel import Session, func, select

from agent import subscriptions
from agent.config import build_config
from agent.models import Delivery, DeliveryStatus, StoredEvent, StoredItem
from agent.scheduler import purge_job
from agent.service import Agent
from tests import databases
from tests.conftest import NOW, serve
from tests.fakes import ckan
from tests.samples import Clock


def counted(session: Session, table: type[Delivery] | type[StoredEvent] | type[StoredItem]) -> int:
    return session.exec(select(func.count()).select_from(table)).one()


async def test_old_history_goes_and_what_is_still_due_stays(tmp_path: Path) -> None:
    with serve(ckan.build_app()) as url:
        config = build_config(
            {
                "agent": {
                    "database_url": databases.url(tmp_path),
                    "keep_deliveries": "P1D",
                    "keep_events": "P1D",
                },
                "sources": {
                    "tenders": {"kind": "ckan", "base_url": url, "alert_on_first_poll": True}
                },
            },
            base_dir=tmp_path,
        )
        clock = Clock(NOW)
        async with Agent.open(config, clock=clock) as agent:
            with Session(agent.db) as session:
                for name, cadence in (("now", "immediate"), ("weekly", "weekly")):
                    given = subscriptions.SubscriptionInput.model_validate(
                        {"name": name, "query": "שירותי", "channels": ["rss"], "cadence": cadence}
                    )
                    subscriptions.save(session, given, now=NOW)
                session.commit()
            await agent.poll_all()
            await agent.dispatch()
            with Session(agent.db) as session:
                statuses = set(session.exec(select(Delivery.status)).all())
                assert statuses == {DeliveryStatus.SENT, DeliveryStatus.PENDING}
                items = counted(session, StoredItem)
                events = counted(session, StoredEvent)
            clock.now = NOW + timedelta(days=2)  # the service's periodic purge, two days on
            await purge_job(agent)
            with Session(agent.db) as session:
                left = set(session.exec(select(Delivery.status)).all())
                events_left = counted(session, StoredEvent)
                assert counted(session, StoredItem) == items
    assert left == {DeliveryStatus.PENDING}  # the weekly digest is still due
    # Only the events the waiting digest names are left.
    assert 0 < events_left < events
