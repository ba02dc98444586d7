"""A subscriber's endpoints over HTTP: their token, their subscription, and subscribing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from agent.accounts import AuditEntry, Organisation
from agent.links import Purpose
from agent.web.api_schemas import ErrorBody
from agent.web.api_schemas_subs import SignUpOut, SubscriptionOut
from tests.test_web_api_site import NOW, ApiSite, api_site, bearer

NGO_RULE = {"query": "שירותי", "kinds": ["tender"]}


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[ApiSite]:
    async with api_site(tmp_path, poll=False) as running:
        yield running


async def call(
    site: ApiSite, method: str, path: str, token: str | None = None, **kwargs: Any
) -> httpx.Response:
    headers = bearer(token) if token is not None else {}
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.request(method, site.api(path), headers=headers, **kwargs)


def error_of(response: httpx.Response, status: int) -> ErrorBody:
    assert response.status_code == status, response.text
    return ErrorBody.model_validate(response.json())


async def test_the_manage_token_shows_the_subscription(site: ApiSite) -> None:
    sub = site.subscribe("tenders-he", rule=NGO_RULE)
    answer = await call(site, "GET", "/subscription", site.token(sub))
    assert answer.status_code == 200
    assert "set-cookie" not in answer.headers
    mine = SubscriptionOut.model_validate(answer.json())
    assert (mine.name, mine.active, mine.channels) == ("tenders-he", True, ["rss"])
    assert mine.rule.query == "שירותי"
    assert mine.feeds.atom == site.agent.links.feed_url(sub)


@pytest.mark.parametrize(
    "header",
    [
        pytest.param({}, id="none"),
        pytest.param({"Authorization": "Bearer not-a-token"}, id="garbage"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, id="basic"),
    ],
)
async def test_without_a_genuine_token_it_is_401(site: ApiSite, header: dict[str, str]) -> None:
    site.subscribe("tenders-he", rule=NGO_RULE)
    async with httpx.AsyncClient() as http:
        answer = await http.get(site.api("/subscription"), headers=header)
    error_of(answer, 401)
    assert answer.headers["www-authenticate"].startswith("Bearer")


async def test_a_token_for_another_purpose_or_subscription_is_401(site: ApiSite) -> None:
    sub = site.subscribe("tenders-he", rule=NGO_RULE)
    other = site.subscribe("other", rule=NGO_RULE)
    unsubscribe = site.token(sub, Purpose.UNSUBSCRIBE)
    error_of(await call(site, "GET", "/subscription", unsubscribe), 401)
    forged = site.token(sub)[:-4] + "0000"
    error_of(await call(site, "GET", "/subscription", forged), 401)
    # Another subscription's signature on this one's id.
    spliced = (sub.public_id or "") + site.token(other).removeprefix(other.public_id or "")
    error_of(await call(site, "GET", "/subscription", spliced), 401)


async def test_an_expired_token_is_410(site: ApiSite) -> None:
    sub = site.subscribe("tenders-he", rule=NGO_RULE)
    token = site.token(sub)
    site.clock.now = NOW + timedelta(days=40)
    body = error_of(await call(site, "GET", "/subscription", token), 410)
    assert "expired" in body.error
    error_of(await call(site, "DELETE", "/subscription", token), 410)
    assert site.stored(sub.id) is not None


async def test_a_subscriber_changes_their_rule_name_cadence_and_language(site: ApiSite) -> None:
    sub = site.subscribe("tenders-he", rule=NGO_RULE)
    changes = {
        "name": "computing",
        "rule": {"query": "מחשוב OR ענן", "amount_min": 100000},
        "cadence": "daily",
        "language": "en",
    }
    answer = await call(site, "PATCH", "/subscription", site.token(sub), json=changes)
    assert answer.status_code == 200, answer.text
    mine = SubscriptionOut.model_validate(answer.json())
    assert (mine.name, mine.cadence, mine.language) == ("computing", "daily", "en")
    assert mine.rule.query == "מחשוב OR ענן"
    assert mine.rule.kinds == []
    stored = site.stored(sub.id)
    assert stored is not None
    assert stored.name == "computing"
    assert stored.rule == {"query": "מחשוב OR ענן", "amount_min": 100000.0}
    assert stored.updated_at == NOW


async def test_a_subscriber_pauses_and_resumes(site: ApiSite) -> None:
    sub = site.subscribe("tenders-he", rule=NGO_RULE)
    token = site.token(sub)
    paused = await call(site, "PATCH", "/subscription", token, json={"active": False})
    assert SubscriptionOut.model_validate(paused.json()).active is False
    stored = site.stored(sub.id)
    assert stored is not None
    assert not stored.active
    resumed = await call(site, "PATCH", "/subscription", token, json={"active": True})
    assert SubscriptionOut.model_validate(resumed.json()).active is True


async def test_an_unconfirmed_subscription_cannot_be_resumed(site: ApiSite) -> None:
    sub = site.subscribe(
        "waiting",
        rule=NGO_RULE,
        channels=["email"],
        addresses={"email": "a@ngo.example"},
        confirmed=False,
    )
    token = site.token(sub)
    body = error_of(await call(site, "PATCH", "/subscription", token, json={"active": True}), 409)
    assert "confirm" in body.error
    stored = site.stored(sub.id)
    assert stored is not None
    assert not stored.active
    assert stored.awaiting_confirmation


async def test_a_patch_is_checked_as_the_pages_check_it(site: ApiSite) -> None:
    sub = site.subscribe("tenders-he", rule=NGO_RULE)
    site.subscribe("taken", rule=NGO_RULE)
    token = site.token(sub)
    bad_query = await call(site, "PATCH", "/subscription", token, json={"rule": {"query": '"ענן'}})
    error = error_of(bad_query, 422).errors[0]
    assert (error.field, error.position) == ("rule.query", 0)
    fields = await call(
        site, "PATCH", "/subscription", token, json={"cadence": "hourly", "channels": ["email"]}
    )
    assert {e.field for e in error_of(fields, 422).errors} == {"cadence", "channels"}
    number = await call(site, "PATCH", "/subscription", token, json={"rule": {"amount_min": "x"}})
    assert [e.field for e in error_of(number, 422).errors] == ["rule.amount_min"]
    empty = await call(site, "PATCH", "/subscription", token, json={"rule": {}})
    assert error_of(empty, 422).errors[0].field == "rule"
    taken = await call(site, "PATCH", "/subscription", token, json={"name": "taken"})
    assert "taken" in error_of(taken, 409).error
    stored = site.stored(sub.id)
    assert stored is not None
    assert (stored.name, stored.rule) == ("tenders-he", NGO_RULE)


@pytest.mark.parametrize(
    ("content", "kind", "status"),
    [
        pytest.param(b'{"cadence": "daily"}', "text/plain", 415, id="not json"),
        pytest.param(b'{"cadence": ', "application/json", 400, id="broken json"),
        pytest.param(b'["daily"]', "application/json", 400, id="not an object"),
        pytest.param(b'{"name": "' + b"x" * 70_000 + b'"}', "application/json", 413, id="huge"),
    ],
)
async def test_a_body_that_is_not_a_json_object_is_refused(
    site: ApiSite, content: bytes, kind: str, status: int
) -> None:
    sub = site.subscribe("tenders-he", rule=NGO_RULE)
    headers = {**bearer(site.token(sub)), "Content-Type": kind}
    async with httpx.AsyncClient() as http:
        answer = await http.patch(site.api("/subscription"), content=content, headers=headers)
    error_of(answer, status)


async def test_a_subscriber_deletes_their_subscription(site: ApiSite) -> None:
    sub = site.subscribe("tenders-he", rule=NGO_RULE)
    token = site.token(sub)
    gone = await call(site, "DELETE", "/subscription", token)
    assert gone.status_code == 204
    assert gone.content == b""
    assert site.stored(sub.id) is None
    error_of(await call(site, "GET", "/subscription", token), 401)


async def test_changes_to_a_shared_subscription_are_audited(site: ApiSite) -> None:
    with Session(site.agent.db) as session:
        org = Organisation(slug="ngo", name="NGO", created_at=NOW)
        session.add(org)
        session.commit()
        org_id = org.id
    sub = site.subscribe("shared", rule=NGO_RULE, organisation_id=org_id)
    token = site.token(sub)
    await call(site, "PATCH", "/subscription", token, json={"cadence": "weekly"})
    await call(site, "PATCH", "/subscription", token, json={"active": False})
    await call(site, "DELETE", "/subscription", token)
    with Session(site.agent.db) as session:
        entries = session.exec(select(AuditEntry).order_by(AuditEntry.id)).all()  # type: ignore[arg-type]
    assert [(e.action, e.actor, e.subject) for e in entries] == [
        ("edited", "subscriber", "shared"),
        ("paused", "subscriber", "shared"),
        ("deleted", "subscriber", "shared"),
    ]
    assert entries[0].before is not None
    assert entries[0].after is not None
    assert (entries[0].before["cadence"], entries[0].after["cadence"]) == ("immediate", "weekly")


# Subscribing (``sign_up``, shared with the subscribe page).


async def test_subscribing_to_a_feed_is_ready_at_once(site: ApiSite) -> None:
    body = {"rule": NGO_RULE, "channels": ["rss"], "language": "ar"}
    answer = await call(site, "POST", "/subscriptions", json=body)
    assert answer.status_code == 202, answer.text
    assert "set-cookie" not in answer.headers
    made = SignUpOut.model_validate(answer.json())
    assert made.next_step == "ready"
    assert set(made.links) >= {"manage", "atom", "rss", "ics"}
    assert made.subscription.active
    # Named after its rule, as no name was given.
    assert "שירותי" in made.subscription.name
    token = made.links["manage"].rsplit("/", 1)[-1]
    mine = SubscriptionOut.model_validate((await call(site, "GET", "/subscription", token)).json())
    assert mine.name == made.subscription.name
    assert mine.language == "ar"


async def test_a_taken_name_is_made_unique(site: ApiSite) -> None:
    site.subscribe("tenders", rule=NGO_RULE)
    body = {"name": "tenders", "rule": NGO_RULE}
    made = SignUpOut.model_validate((await call(site, "POST", "/subscriptions", json=body)).json())
    assert made.subscription.name == "tenders (2)"
    first = site.subscribe("tenders", rule=NGO_RULE)
    assert first.rule == NGO_RULE


async def test_subscribing_by_email_sends_a_confirmation(site: ApiSite) -> None:
    body = {
        "name": "ngo",
        "rule": NGO_RULE,
        "channels": ["email"],
        "addresses": {"email": "Reader@NGO.example"},
    }
    answer = await call(site, "POST", "/subscriptions", json=body)
    assert answer.status_code == 202, answer.text
    made = SignUpOut.model_validate(answer.json())
    assert made.next_step == "confirm"
    assert "manage" not in made.links
    assert made.subscription.awaiting_confirmation
    assert not made.subscription.active
    assert made.subscription.addresses == {"email": "Reader@ngo.example"}
    [message] = [m for m in site.mail.messages if "Reader@ngo.example" in str(m["To"])]
    body_text = message.get_body(("plain",))
    assert body_text is not None
    assert "/confirm/" in body_text.get_content()


@pytest.mark.parametrize(
    ("body", "field", "position"),
    [
        pytest.param(
            {"rule": NGO_RULE, "channels": ["email"]}, "addresses.email", None, id="email"
        ),
        pytest.param(
            {"rule": NGO_RULE, "channels": ["email"], "addresses": {"email": "nobody"}},
            "addresses.email",
            None,
            id="bad address",
        ),
        pytest.param({"rule": NGO_RULE, "channels": ["pigeon"]}, "channels", None, id="channel"),
        pytest.param({"rule": {"query": "ענן AND"}}, "rule.query", 4, id="query"),
        pytest.param({"rule": {}}, "rule", None, id="empty rule"),
        pytest.param({"rule": NGO_RULE, "colour": "red"}, "colour", None, id="unknown field"),
        pytest.param({"rule": NGO_RULE, "name": "a\nb"}, "name", None, id="line break in name"),
        pytest.param(
            {"rule": NGO_RULE, "channels": ["telegram"], "chat_id": "12345"},
            "channels",
            None,
            id="typed chat",
        ),
        pytest.param({"rule": NGO_RULE, "connect": ["email"]}, "connect", None, id="connect"),
        pytest.param({"rule": NGO_RULE, "connect": ["telegram"]}, "connect", None, id="no bot"),
    ],
)
async def test_a_subscription_is_checked_as_the_subscribe_page_checks_it(
    site: ApiSite, body: dict[str, Any], field: str, position: int | None
) -> None:
    answer = await call(site, "POST", "/subscriptions", json=body)
    errors = error_of(answer, 422).errors
    assert (errors[0].field, errors[0].position) == (field, position), errors
    assert site.mail.messages == []


async def test_a_confirmation_that_cannot_be_sent_is_503(site: ApiSite) -> None:
    site.mail.refuse.add("bounce@ngo.example")
    body = {"rule": NGO_RULE, "channels": ["email"], "addresses": {"email": "bounce@ngo.example"}}
    body_error = error_of(await call(site, "POST", "/subscriptions", json=body), 503)
    assert "confirmation" in body_error.error
