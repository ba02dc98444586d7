"""Signed links and identities that outlive their rows (issue #9, points 10 and 11).

Links name a subscription by a random public id bound to its own secret, carry
a purpose and an expiry, and are parsed strictly; Message-IDs are made of a
random token stored with each delivery. Both hold on a database made by the
previous release, whose tables hand a deleted row's id to the next row.
"""

from __future__ import annotations

import email
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from agent import db as database
from agent import subscriptions
from agent.config import build_config
from agent.links import Links, LinkState, Purpose, parse
from agent.models import Delivery, Subscription
from agent.service import Agent
from agent.web import create_app
from tests import databases
from tests.conftest import ROOT, serve
from tests.fakes import ckan

NOW = datetime(2017, 7, 1, 9, 0, tzinfo=UTC)
#: Why the tests on the previous release's database run on SQLite only.
PREVIOUS = "the previous release's database was an SQLite file"
KEY = "a-test-signing-key"

#: ``subscription`` and ``delivery`` as the previous release's ``smart-agent init``
#: made them: no public id, secret or message token, and no AUTOINCREMENT.
PREVIOUS_RELEASE = """
CREATE TABLE subscription (
    id INTEGER NOT NULL, name VARCHAR NOT NULL, rule JSON NOT NULL, compiled JSON NOT NULL,
    channels JSON, email VARCHAR, telegram_chat_id VARCHAR, language VARCHAR NOT NULL,
    cadence VARCHAR NOT NULL, feed_token VARCHAR NOT NULL, active BOOLEAN NOT NULL,
    created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL,
    PRIMARY KEY (id), UNIQUE (name)
);
CREATE UNIQUE INDEX ix_subscription_feed_token ON subscription (feed_token);
CREATE TABLE delivery (
    id INTEGER NOT NULL, subscription_id INTEGER NOT NULL, event_id INTEGER NOT NULL,
    channel VARCHAR NOT NULL, status VARCHAR NOT NULL, lease_owner VARCHAR,
    attempts INTEGER NOT NULL, next_attempt_at DATETIME NOT NULL, created_at DATETIME NOT NULL,
    sent_at DATETIME, last_error VARCHAR, receipt VARCHAR, reasons JSON,
    PRIMARY KEY (id), UNIQUE (subscription_id, event_id, channel),
    FOREIGN KEY(subscription_id) REFERENCES subscription (id),
    FOREIGN KEY(event_id) REFERENCES event (id)
);
"""


def previous_release_database(path: Path) -> None:
    """Create the two tables as the previous release did, with one subscription."""
    with sqlite3.connect(path) as connection:
        connection.executescript(PREVIOUS_RELEASE)
        connection.execute(
            "INSERT INTO subscription VALUES (1, 'old', '{\"query\": \"zzz\"}', '{}', '[\"rss\"]',"
            " NULL, NULL,"
            " 'he', 'immediate', 'old-feed-token', 1, '2017-01-01', '2017-01-01')"
        )
    connection.close()


def subscription(name: str = "cloud") -> Subscription:
    """A subscription as ``subscriptions.save`` makes it (random public id and secret)."""
    return Subscription(id=1, name=name, feed_token=f"feed-{name}", created_at=NOW, updated_at=NOW)


def at(when: datetime, key: str = KEY) -> Links:
    """Links as a service whose clock says ``when`` makes and checks them."""
    return Links("https://alerts.example.org", key, clock=lambda: when)


def token(links: Links, sub: Subscription, purpose: Purpose = Purpose.UNSUBSCRIBE) -> str:
    """The token part of a link."""
    return links.sign(sub, purpose)


# --- tokens -------------------------------------------------------------------------


def test_a_link_works_for_its_own_purpose_only() -> None:
    sub, links = subscription(), at(NOW)
    unsubscribe, manage = token(links, sub), token(links, sub, Purpose.MANAGE)
    assert links.check(parse(unsubscribe), sub, Purpose.UNSUBSCRIBE) is LinkState.VALID
    assert links.check(parse(manage), sub, Purpose.MANAGE) is LinkState.VALID
    assert links.check(parse(manage), sub, Purpose.UNSUBSCRIBE) is LinkState.INVALID
    assert links.check(parse(unsubscribe), sub, Purpose.MANAGE) is LinkState.INVALID


def test_unsubscribe_links_last_a_year_and_manage_links_a_month() -> None:
    sub, links = subscription(), at(NOW)
    unsubscribe, manage = parse(token(links, sub)), parse(token(links, sub, Purpose.MANAGE))
    later = at(NOW + timedelta(days=300))
    assert later.check(unsubscribe, sub, Purpose.UNSUBSCRIBE) is LinkState.VALID
    assert later.check(manage, sub, Purpose.MANAGE) is LinkState.EXPIRED
    much_later = at(NOW + timedelta(days=367))
    assert much_later.check(unsubscribe, sub, Purpose.UNSUBSCRIBE) is LinkState.EXPIRED


def test_the_lifetimes_are_configurable() -> None:
    config = build_config(
        {"agent": {"unsubscribe_link_ttl": "P7D", "manage_link_ttl": "PT1H"}}, base_dir=ROOT
    )
    assert config.agent.unsubscribe_link_ttl == timedelta(days=7)
    assert config.agent.manage_link_ttl == timedelta(hours=1)


def test_links_of_one_day_are_the_same_text() -> None:
    # A feed's ETag and a resent message must not change every second.
    sub = subscription()
    assert token(at(NOW), sub) == token(at(NOW + timedelta(hours=10)), sub)


def test_a_link_never_reaches_a_subscription_made_after_its_own_was_deleted() -> None:
    links = at(NOW)
    old, new = subscription(), subscription()  # the same row id and name, made anew
    assert old.public_id != new.public_id
    assert links.check(parse(token(links, old)), new, Purpose.UNSUBSCRIBE) is LinkState.INVALID


def test_a_new_secret_revokes_the_links_given_out() -> None:
    links, sub = at(NOW), subscription()
    given = parse(token(links, sub))
    sub.link_secret = "a-new-secret"
    assert links.check(given, sub, Purpose.UNSUBSCRIBE) is LinkState.INVALID


def test_a_link_signed_with_another_key_is_refused() -> None:
    sub = subscription()
    forged = parse(token(at(NOW, key="change-me"), sub))
    assert at(NOW).check(forged, sub, Purpose.UNSUBSCRIBE) is LinkState.INVALID


def test_a_well_formed_token_is_parsed() -> None:
    sub = subscription()
    parsed = parse(token(at(NOW), sub))
    assert parsed is not None
    assert parsed.public_id == sub.public_id
    assert parsed.expires % 86_400 == 0


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda t: "²", id="superscript two"),
        pytest.param(lambda t: "1.²", id="superscript in a signature"),
        pytest.param(lambda t: "١." + t.split(".")[2], id="arabic-indic digit id"),
        pytest.param(lambda t: "9" * 5000 + "." + t.split(".")[2], id="5000-digit id"),
        pytest.param(lambda t: t.replace(".", ".000", 1), id="leading zeros in the expiry"),
        pytest.param(lambda t: t.upper(), id="upper-case signature"),
        pytest.param(lambda t: t[:-1] + "é", id="non-ascii signature"),
        pytest.param(lambda t: t + "\n", id="trailing newline"),
        pytest.param(lambda t: " " + t, id="leading space"),
        pytest.param(lambda t: t + "0", id="signature too long"),
        pytest.param(lambda t: t.rsplit(".", 1)[0], id="no signature"),
        pytest.param(lambda t: "1." + t.split(".")[2], id="the previous release's id.sig"),
        pytest.param(lambda t: "", id="empty"),
        pytest.param(lambda t: "..", id="dots only"),
    ],
)
def test_anything_else_is_not_a_token(change: object) -> None:
    assert callable(change)
    assert parse(change(token(at(NOW), subscription()))) is None


# --- identities on a database made by the previous release ---------------------------------


@pytest.mark.sqlite_only(PREVIOUS)
def test_an_older_database_gains_random_identities_once(tmp_path: Path) -> None:
    previous_release_database(tmp_path / "a.db")
    engine = database.connect(f"sqlite:///{tmp_path / 'a.db'}")
    database.init(engine)
    with Session(engine) as session:
        old = session.exec(select(Subscription)).one()
        assert old.public_id
        assert old.link_secret
        first = (old.public_id, old.link_secret)
    database.init(engine)  # every start runs init: the values stay
    with Session(engine) as session:
        again = session.exec(select(Subscription)).one()
        assert (again.public_id, again.link_secret) == first
    indexes = {i["name"]: i["unique"] for i in sa.inspect(engine).get_indexes("subscription")}
    assert indexes["ix_subscription_public_id"]
    indexes = {i["name"]: i["unique"] for i in sa.inspect(engine).get_indexes("delivery")}
    assert indexes["ix_delivery_message_token"]
    engine.dispose()


@pytest.mark.sqlite_only(PREVIOUS)
def test_an_older_database_keeps_its_addresses_by_channel(tmp_path: Path) -> None:
    previous_release_database(tmp_path / "a.db")
    with sqlite3.connect(tmp_path / "a.db") as connection:
        connection.execute(
            'UPDATE subscription SET channels = \'["email", "telegram"]\','
            " email = 'team@ngo.example', telegram_chat_id = '-100123'"
        )
    connection.close()
    engine = database.connect(f"sqlite:///{tmp_path / 'a.db'}")
    database.init(engine)
    database.init(engine)
    with Session(engine) as session:
        old = session.exec(select(Subscription)).one()
    engine.dispose()
    assert old.addresses == {"email": "team@ngo.example", "telegram": "-100123"}


def test_a_new_database_never_hands_a_deleted_rows_id_out_again(tmp_path: Path) -> None:
    engine = database.connect(databases.url(tmp_path))
    database.init(engine)
    with Session(engine, expire_on_commit=False) as session:
        first = subscriptions.save(session, entry("first"), now=NOW)
        session.commit()
        subscriptions.delete(session, first)
        session.commit()
        second = subscriptions.save(session, entry("second"), now=NOW)
        session.commit()
    assert second.id != first.id
    engine.dispose()


def entry(name: str, **fields: object) -> subscriptions.SubscriptionInput:
    """A subscription to the fake's service tenders."""
    return subscriptions.SubscriptionInput.model_validate(
        {"name": name, "query": "שירותי", "channels": ["rss"], **fields}
    )


@dataclass
class World:
    agent: Agent
    mail: Path
    previous_release: bool


@pytest.fixture(
    params=[
        "new database",
        pytest.param("previous release's database", marks=pytest.mark.sqlite_only(PREVIOUS)),
    ]
)
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    previous_release = request.param != "new database"
    if previous_release:
        previous_release_database(tmp_path / "a.db")
        url = f"sqlite:///{tmp_path / 'a.db'}"
    else:
        url = databases.url(tmp_path)
    # Two sources serving the same rows: the second poll makes as many
    # deliveries as the first, the case where reused row ids collided.
    with serve(ckan.build_app()) as first, serve(ckan.build_app()) as second:
        config = build_config(
            {
                "agent": {
                    "database_url": url,
                    "templates_dir": str(ROOT / "templates"),
                    "public_url": "https://alerts.example.org",
                    "signing_key": KEY,
                },
                "notifiers": {"email": {"drop_dir": str(tmp_path / "mail")}},
                "sources": {
                    name: {"kind": "ckan", "base_url": url, "alert_on_first_poll": True}
                    for name, url in (("first", first), ("second", second))
                },
            },
            base_dir=tmp_path,
        )
        async with Agent.open(config, clock=lambda: NOW) as agent:
            yield World(agent, tmp_path / "mail", previous_release)


def save(agent: Agent, name: str, **fields: object) -> Subscription:
    """Save a subscription and return it."""
    with Session(agent.db, expire_on_commit=False) as session:
        sub = subscriptions.save(session, entry(name, **fields), now=NOW)
        session.commit()
    return sub


def delete(agent: Agent, sub: Subscription) -> None:
    """Remove a subscription and its deliveries, as ``subscriptions remove`` does."""
    with Session(agent.db) as session:
        stored = session.get(Subscription, sub.id)
        assert stored is not None
        subscriptions.delete(session, stored)
        session.commit()


async def test_message_ids_stay_unique_across_deleted_and_recreated_deliveries(
    world: World,
) -> None:
    agent, seen = world.agent, []
    for number, source in enumerate(("first", "second")):
        sub = save(agent, f"person {number}", channels=["email"], email=f"p{number}@example.org")
        await agent.poll(source)
        assert (await agent.dispatch()).sent
        with Session(agent.db) as session:
            rows = session.exec(select(Delivery).where(Delivery.subscription_id == sub.id)).all()
            seen.append(([row.id for row in rows], {row.receipt for row in rows}))
        delete(agent, sub)
    (first_ids, [first_id]), (second_ids, [second_id]) = seen
    # The previous release's table gives the second person the first one's row ids.
    assert (first_ids == second_ids) is world.previous_release
    assert first_id != second_id
    mails = [email.message_from_bytes(p.read_bytes()) for p in world.mail.iterdir()]
    assert {m["Message-ID"] for m in mails} == {first_id, second_id}
    assert len(mails) == 2
    assert {m["To"] for m in mails} == {"p0@example.org", "p1@example.org"}


async def test_an_old_link_does_not_unsubscribe_whoever_got_its_row_next(world: World) -> None:
    agent = world.agent
    save(agent, "someone")
    gone = save(agent, "gone")
    link = agent.links.unsubscribe_url(gone)
    delete(agent, gone)
    newcomer = save(agent, "newcomer")
    app = create_app(agent)
    with serve(app) as site:
        old = link.replace(agent.links.public_url, site)
        async with httpx.AsyncClient() as http:
            assert (await http.get(old)).status_code == 404
            answer = await http.post(old, data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 404
    with Session(agent.db) as session:
        stored = session.get(Subscription, newcomer.id)
        assert stored is not None
        assert stored.active
