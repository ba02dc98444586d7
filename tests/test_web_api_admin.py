"""The admin's endpoints over HTTP: API keys and sessions, subscriptions, deliveries, polls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, col, select

from agent.accounts import ApiKey, AuditEntry, Organisation
from agent.models import Delivery, DeliveryStatus, SourceState
from agent.web.api_schemas import (
    DeliveryDetail,
    DeliveryList,
    DeliveryOut,
    ErrorBody,
    PollStarted,
)
from agent.web.api_schemas_subs import AdminSubscriptionList, AdminSubscriptionOut
from tests.test_web_api_site import (
    ADMIN_EMAIL,
    MEMBER_EMAIL,
    NOW,
    SOURCE,
    ApiSite,
    api_site,
    bearer,
)

RULE = {"query": "שירותי"}


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[ApiSite]:
    async with api_site(tmp_path, poll=False) as running:
        yield running


async def call(site: ApiSite, method: str, path: str, key: str | None, **kw: Any) -> httpx.Response:
    headers = bearer(key) if key is not None else {}
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.request(method, site.api(path), headers=headers, **kw)


def error_of(response: httpx.Response, status: int) -> ErrorBody:
    assert response.status_code == status, response.text
    return ErrorBody.model_validate(response.json())


async def with_deliveries(site: ApiSite) -> dict[str, int]:
    """Two subscriptions polled and dispatched: the feed's alerts sent, the e-mails retrying."""
    feed = site.subscribe("feed", rule=RULE)
    mail = site.subscribe(
        "mail", rule=RULE, channels=["email"], addresses={"email": "t@ngo.example"}
    )
    await site.agent.poll_all()
    site.mail.answers["RCPT"] = "451 4.3.0 Try again later"
    await site.agent.dispatch()
    return {"feed": feed.id or 0, "mail": mail.id or 0}


# Who may call.


async def test_an_api_key_opens_the_admin_endpoints(site: ApiSite) -> None:
    key = site.api_key()
    answer = await call(site, "GET", "/admin/subscriptions", key)
    assert answer.status_code == 200
    assert "set-cookie" not in answer.headers


@pytest.mark.parametrize("key", [None, "sa_unknown", "sa_", "not even a key"])
async def test_without_a_valid_key_or_session_it_is_401(site: ApiSite, key: str | None) -> None:
    answer = await call(site, "GET", "/admin/deliveries", key)
    error_of(answer, 401)
    assert answer.headers["www-authenticate"].startswith("Bearer")


async def test_a_revoked_key_is_401(site: ApiSite) -> None:
    key = site.api_key("old")
    with Session(site.agent.db) as session:
        row = session.exec(select(ApiKey).where(ApiKey.name == "old")).one()
        row.revoked_at = NOW
        session.add(row)
        session.commit()
    assert "revoked" in error_of(await call(site, "GET", "/admin/subscriptions", key), 401).error


async def test_a_subscribers_token_is_no_api_key(site: ApiSite) -> None:
    sub = site.subscribe("feed", rule=RULE)
    error_of(await call(site, "GET", f"/admin/subscriptions/{sub.id}", site.token(sub)), 401)


async def test_an_admins_session_needs_the_csrf_header_to_change_things(site: ApiSite) -> None:
    site.user(ADMIN_EMAIL, admin=True)
    sub = site.subscribe("feed", rule=RULE)
    path = f"/api/v1/admin/subscriptions/{sub.id}"
    async with site.logged_in(ADMIN_EMAIL) as (client, csrf):
        assert (await client.get(path)).status_code == 200
        without = await client.patch(path, json={"cadence": "daily"})
        assert "X-CSRF-Token" in error_of(without, 403).error
        wrong = await client.patch(path, json={"cadence": "daily"}, headers={"X-CSRF-Token": "x"})
        error_of(wrong, 403)
        done = await client.patch(path, json={"cadence": "daily"}, headers={"X-CSRF-Token": csrf})
        assert done.status_code == 200, done.text
        assert AdminSubscriptionOut.model_validate(done.json()).cadence == "daily"
        error_of(await client.delete(path), 403)
        assert site.stored(sub.id) is not None


async def test_a_login_that_is_not_an_admins_is_403(site: ApiSite) -> None:
    site.user(MEMBER_EMAIL, admin=False)
    async with site.logged_in(MEMBER_EMAIL) as (client, csrf):
        answer = await client.get("/api/v1/admin/deliveries", headers={"X-CSRF-Token": csrf})
    assert error_of(answer, 403).error == "this is for admins"


# Subscriptions.


async def test_admins_list_every_subscription_a_page_at_a_time(site: ApiSite) -> None:
    key = site.api_key()
    made = [site.subscribe(f"sub {n}", rule=RULE) for n in range(5)]
    paused = site.subscribe("paused", rule=RULE, channels=["email"], addresses={"email": "p@x.org"})
    paused_id = paused.id
    await call(site, "PATCH", f"/admin/subscriptions/{paused_id}", key, json={"active": False})
    first = await call(site, "GET", "/admin/subscriptions", key, params={"per_page": 4})
    listed = AdminSubscriptionList.model_validate(first.json())
    assert [s.name for s in listed.subscriptions] == ["paused", "sub 4", "sub 3", "sub 2"]
    assert listed.page.total == 6
    assert listed.page.next is not None
    assert listed.subscriptions[0].addresses == {"email": "p@x.org"}
    active = await call(site, "GET", "/admin/subscriptions", key, params={"active": "false"})
    assert [s.id for s in AdminSubscriptionList.model_validate(active.json()).subscriptions] == [
        paused_id
    ]
    bad = await call(site, "GET", "/admin/subscriptions", key, params={"active": "maybe"})
    assert [e.field for e in error_of(bad, 422).errors] == ["active"]
    assert made[0].id is not None


async def test_admins_see_change_and_delete_a_subscription(site: ApiSite) -> None:
    key = site.api_key()
    sub = site.subscribe("feed", rule=RULE)
    path = f"/admin/subscriptions/{sub.id}"
    shown = AdminSubscriptionOut.model_validate((await call(site, "GET", path, key)).json())
    assert (shown.id, shown.name, shown.organisation_id) == (sub.id, "feed", None)
    changed = await call(site, "PATCH", path, key, json={"name": "renamed", "language": "ar"})
    assert AdminSubscriptionOut.model_validate(changed.json()).name == "renamed"
    bad = await call(site, "PATCH", path, key, json={"rule": {"query": "(ענן"}})
    assert error_of(bad, 422).errors[0].position == 0
    assert (await call(site, "DELETE", path, key)).status_code == 204
    error_of(await call(site, "GET", path, key), 404)
    error_of(await call(site, "PATCH", path, key, json={"name": "x"}), 404)
    error_of(await call(site, "DELETE", path, key), 404)


async def test_admins_changes_to_a_shared_subscription_are_audited(site: ApiSite) -> None:
    site.user(ADMIN_EMAIL, admin=True)
    with Session(site.agent.db) as session:
        org = Organisation(slug="ngo", name="NGO", created_at=NOW)
        session.add(org)
        session.commit()
        org_id = org.id
    sub = site.subscribe("shared", rule=RULE, organisation_id=org_id)
    await call(site, "PATCH", f"/admin/subscriptions/{sub.id}", site.api_key(), json={"name": "s"})
    async with site.logged_in(ADMIN_EMAIL) as (client, csrf):
        answer = await client.delete(
            f"/api/v1/admin/subscriptions/{sub.id}", headers={"X-CSRF-Token": csrf}
        )
        assert answer.status_code == 204
    with Session(site.agent.db) as session:
        entries = session.exec(select(AuditEntry).order_by(col(AuditEntry.id))).all()
    assert [(e.action, e.actor, e.organisation_id) for e in entries] == [
        ("edited", "api key", org_id),
        ("deleted", ADMIN_EMAIL, org_id),
    ]


# Deliveries.


async def test_the_ledger_is_listed_and_filtered(site: ApiSite) -> None:
    subs = await with_deliveries(site)
    key = site.api_key()
    everything = DeliveryList.model_validate(
        (await call(site, "GET", "/admin/deliveries", key, params={"per_page": 100})).json()
    )
    assert everything.deliveries
    ids = [d.id for d in everything.deliveries]
    assert ids == sorted(ids, reverse=True)
    assert everything.page.total == len(ids)
    by = {"channel": "email"}
    mail = DeliveryList.model_validate(
        (await call(site, "GET", "/admin/deliveries", key, params=by)).json()
    )
    assert {(d.channel, d.status, d.subscription) for d in mail.deliveries} == {
        ("email", "retrying", "mail")
    }
    assert all(d.last_error for d in mail.deliveries)
    by = {"status": "sent", "subscription": str(subs["feed"])}
    sent = DeliveryList.model_validate(
        (await call(site, "GET", "/admin/deliveries", key, params=by)).json()
    )
    assert {(d.subscription_id, d.status) for d in sent.deliveries} == {(subs["feed"], "sent")}
    assert sent.page.total == len(everything.deliveries) - (mail.page.total or 0)
    wrong = await call(
        site, "GET", "/admin/deliveries", key, params={"status": "lost", "channel": "pigeon"}
    )
    assert {e.field for e in error_of(wrong, 422).errors} == {"status", "channel"}


async def test_a_delivery_says_why_it_matched(site: ApiSite) -> None:
    await with_deliveries(site)
    key = site.api_key()
    listed = DeliveryList.model_validate((await call(site, "GET", "/admin/deliveries", key)).json())
    first = listed.deliveries[0]
    detail = DeliveryDetail.model_validate(
        (await call(site, "GET", f"/admin/deliveries/{first.id}", key)).json()
    )
    assert detail.item_title == first.item_title
    assert any(reason.term == "שירותי" for reason in detail.reasons)
    assert detail.explained
    assert any("שירותי" in phrase for phrase in detail.explained)
    error_of(await call(site, "GET", "/admin/deliveries/99999", key), 404)


async def test_retry_sends_a_failed_delivery_now_and_replay_sends_again(site: ApiSite) -> None:
    subs = await with_deliveries(site)
    key = site.api_key()
    site.clock.now = NOW + timedelta(seconds=5)
    with Session(site.agent.db) as session:
        retrying = session.exec(
            select(Delivery).where(Delivery.subscription_id == subs["mail"])
        ).first()
        sent = session.exec(
            select(Delivery).where(Delivery.subscription_id == subs["feed"])
        ).first()
    assert retrying is not None
    assert sent is not None
    retried = await call(site, "POST", f"/admin/deliveries/{retrying.id}/retry", key)
    assert retried.status_code == 200, retried.text
    assert DeliveryOut.model_validate(retried.json()).next_attempt_at == site.clock.now
    not_failed = await call(site, "POST", f"/admin/deliveries/{sent.id}/retry", key)
    assert "retry" in error_of(not_failed, 409).error
    replayed = await call(site, "POST", f"/admin/deliveries/{sent.id}/replay", key)
    again = DeliveryOut.model_validate(replayed.json())
    assert (again.status, again.attempts) == (DeliveryStatus.PENDING, 0)
    queued = await call(site, "POST", f"/admin/deliveries/{retrying.id}/replay", key)
    error_of(queued, 409)
    error_of(await call(site, "POST", "/admin/deliveries/99999/retry", key), 404)
    site.mail.answers.clear()
    await site.agent.dispatch()
    with Session(site.agent.db) as session:
        assert session.get(Delivery, retrying.id).status == DeliveryStatus.SENT  # type: ignore[union-attr]


# Sources.


async def test_an_admin_polls_a_source_now(site: ApiSite) -> None:
    key = site.api_key()
    answer = await call(site, "POST", f"/admin/sources/{SOURCE}/poll", key)
    assert answer.status_code == 202
    assert PollStarted.model_validate(answer.json()).source == SOURCE

    async def polled() -> SourceState | None:
        for _ in range(500):
            with Session(site.agent.db) as session:
                state = session.get(SourceState, SOURCE)
            if state is not None and state.last_success_at is not None:
                return state
            await asyncio.sleep(0.02)
        return None

    state = await polled()
    assert state is not None
    assert state.last_item_count == 21
    error_of(await call(site, "POST", "/admin/sources/nowhere/poll", key), 404)
    with Session(site.agent.db) as session:
        state.disabled_at, state.disabled_by = NOW, ADMIN_EMAIL
        session.add(state)
        session.commit()
    error_of(await call(site, "POST", f"/admin/sources/{SOURCE}/poll", key), 409)
