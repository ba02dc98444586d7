"""The subscriber's pages over HTTP: manage behind a signed link, and one-click unsubscribe."""

from __future__ import annotations

import re
import tomllib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from agent import subscriptions
from agent.accounts import AuditAction, AuditEntry, Organisation
from agent.config import build_config
from agent.links import Links
from agent.models import Delivery, DeliveryStatus, Subscription
from agent.service import Agent
from agent.web import create_app
from tests import databases
from tests.conftest import ROOT, serve
from tests.fakes import ckan, telegram
from tests.service import TELEGRAM_TOKEN

NOW = datetime(2017, 7, 1, 9, 0, tzinfo=UTC)
KEY = "manage-test-signing-key"
PUBLIC = "http://alerts.example.org"  # not https: the session cookie is then not Secure

#: Dana has two subscriptions at one address; Omer and a feed have their own.
PEOPLE: list[dict[str, Any]] = [
    {
        "name": "dana services",
        "query": "שירותי",
        "channels": ["email"],
        "email": "dana@example.org",
        "language": "he",
        "cadence": "daily",
    },
    {
        "name": "dana engineering",
        "query": "הנדסי",
        "kinds": ["tender"],
        "channels": ["email", "telegram", "rss"],
        "email": "dana@example.org",
        "telegram_chat_id": "-100777",
        "language": "en",
        "cadences": {"rss": "immediate"},
    },
    {
        "name": "omer",
        "query": "שירותי",
        "channels": ["email"],
        "email": "omer@example.org",
        "language": "ar",
    },
    {"name": "a feed", "query": "שירותי", "channels": ["rss"], "language": "en"},
]


@dataclass
class Site:
    agent: Agent
    url: str
    subs: dict[str, Subscription]

    def link(self, made: str) -> str:
        """A link the agent made, pointed at the test server."""
        return made.replace(PUBLIC, self.url)

    def manage(self, name: str) -> str:
        """The manage page of subscription ``name``."""
        return self.link(self.agent.links.manage_url(self.subs[name]))

    def stored(self, name: str) -> Subscription | None:
        """Subscription ``name`` as the database has it now."""
        with Session(self.agent.db) as session:
            return session.get(Subscription, self.subs[name].id)

    def statuses(self, name: str) -> set[str]:
        """The statuses of subscription ``name``'s deliveries."""
        with Session(self.agent.db) as session:
            query = select(Delivery).where(Delivery.subscription_id == self.subs[name].id)
            return {row.status for row in session.exec(query)}


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    bot = telegram.build_app(TELEGRAM_TOKEN)
    with serve(ckan.build_app()) as source_url, serve(bot) as bot_url:
        config = build_config(
            {
                "agent": {
                    "database_url": databases.url(tmp_path),
                    "templates_dir": str(ROOT / "templates"),
                    "public_url": PUBLIC,
                    "signing_key": KEY,
                },
                "sources": {
                    "tenders": {"kind": "ckan", "base_url": source_url, "alert_on_first_poll": True}
                },
                "notifiers": {"telegram": {"token": TELEGRAM_TOKEN, "base_url": f"{bot_url}/bot"}},
            },
            base_dir=tmp_path,
        )
        async with Agent.open(config, clock=lambda: NOW) as agent:
            subs = {}
            with Session(agent.db, expire_on_commit=False) as session:
                for entry in PEOPLE:
                    given = subscriptions.SubscriptionInput.model_validate(entry)
                    subs[given.name] = subscriptions.save(session, given, now=NOW)
                session.commit()
            await agent.poll_all()
            with serve(create_app(agent)) as url:
                yield Site(agent, url, subs)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as http:
        yield http


def csrf(page: httpx.Response) -> str:
    """The CSRF token in a page's forms."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return found[1]


def post(http: httpx.Client, page_url: str, path: str, **fields: Any) -> httpx.Response:
    """Open ``page_url`` (for its CSRF token), then post ``fields`` to ``path`` under it."""
    page = http.get(page_url)
    assert page.status_code == 200, page.text
    return http.post(f"{page_url}{path}", data={"csrf_token": csrf(page), **fields})


def follow(http: httpx.Client, site: Site, answer: httpx.Response) -> httpx.Response:
    """The page a form's 303 leads to."""
    assert answer.status_code == 303, answer.text
    return http.get(site.url + answer.headers["location"])


def pid(site: Site, name: str) -> str:
    """The public id of subscription ``name``."""
    return site.subs[name].public_id or ""


def test_the_manage_page_lists_every_subscription_at_the_links_address(
    site: Site, client: httpx.Client
) -> None:
    page = client.get(site.manage("dana services"))
    assert page.status_code == 200
    # In the subscription's language: Hebrew.
    assert '<html lang="he" dir="rtl">' in page.text
    assert "dana services" in page.text
    assert "dana engineering" in page.text
    assert "omer" not in page.text
    assert "a feed" not in page.text
    assert "סיכום יומי" in page.text  # the daily cadence, in words
    assert "פעיל" in page.text  # the status, in words
    engineering = site.subs["dana engineering"]
    for made in (
        site.agent.links.feed_url(engineering),
        site.agent.links.rss_url(engineering),
        site.agent.links.calendar_url(engineering),
    ):
        assert made in page.text
    assert "dana@example.org" in page.text


def test_the_visitors_language_choice_wins(site: Site, client: httpx.Client) -> None:
    page = client.get(site.manage("dana services") + "?lang=en")
    assert '<html lang="en" dir="ltr">' in page.text
    assert "Daily digest" in page.text
    assert "Active" in page.text
    # The choice sticks, as anywhere on the site.
    again = client.get(site.manage("omer"))
    assert '<html lang="en"' in again.text


def test_without_a_choice_the_subscriptions_language_does_not_stick(
    site: Site, client: httpx.Client
) -> None:
    assert '<html lang="ar"' in client.get(site.manage("omer")).text
    assert '<html lang="he"' in client.get(site.manage("dana services")).text


def test_the_rule_is_shown_in_words(site: Site, client: httpx.Client) -> None:
    page = client.get(site.manage("dana engineering") + "?lang=en")
    assert "Search words: <bdi>הנדסי</bdi>" in page.text
    assert "Kinds of publication: <bdi>Tender</bdi>" in page.text
    assert "on Feed (RSS, Atom, calendar): Immediately, as they come" in page.text


def test_pausing_keeps_what_waits_and_resuming_starts_again(
    site: Site, client: httpx.Client
) -> None:
    home = site.manage("dana services")
    assert site.statuses("dana services") == {DeliveryStatus.PENDING}
    shown = follow(client, site, post(client, home, f"/s/{pid(site, 'dana services')}/pause"))
    assert "הושהה: \u2068dana services\u2069" in shown.text
    assert "מושהה" in shown.text
    stored = site.stored("dana services")
    assert stored is not None
    assert not stored.active
    assert site.statuses("dana services") == {DeliveryStatus.PENDING}
    follow(client, site, post(client, home, f"/s/{pid(site, 'dana services')}/resume"))
    stored = site.stored("dana services")
    assert stored is not None
    assert stored.active


@pytest.mark.parametrize("cadence", ["daily", "weekly", "immediate"])
def test_changing_how_often(site: Site, client: httpx.Client, cadence: str) -> None:
    home = site.manage("dana services")
    answer = post(client, home, f"/s/{pid(site, 'dana engineering')}/cadence", cadence=cadence)
    assert "נשמר" in follow(client, site, answer).text
    stored = site.stored("dana engineering")
    assert stored is not None
    assert (stored.cadence, stored.cadences, stored.active) == (cadence, {}, True)


def test_changing_the_language(site: Site, client: httpx.Client) -> None:
    home = site.manage("dana services")
    follow(
        client, site, post(client, home, f"/s/{pid(site, 'dana services')}/language", language="ar")
    )
    stored = site.stored("dana services")
    assert stored is not None
    assert stored.language == "ar"
    assert '<html lang="ar"' in client.get(home).text


def test_channels_go_off_and_on_again_with_a_known_address(
    site: Site, client: httpx.Client
) -> None:
    home, target = site.manage("dana engineering"), f"/s/{pid(site, 'dana services')}"
    # The Telegram chat this link's subscription is sent to is known: it can be added.
    page = client.get(home + target)
    assert 'value="telegram"' in page.text
    assert "-100777" in page.text
    both = ["email", "telegram", "rss"]
    follow(client, site, post(client, home, f"{target}/channels", channels=both))
    stored = site.stored("dana services")
    assert stored is not None
    assert stored.channels == both
    follow(client, site, post(client, home, f"{target}/channels", channels=["telegram"]))
    stored = site.stored("dana services")
    assert stored is not None
    assert (stored.channels, stored.addresses) == (["telegram"], {"telegram": "-100777"})
    # What waited for the e-mail that was turned off will not go out.
    assert site.statuses("dana services") == {DeliveryStatus.CANCELLED}
    # Still Dana's (the same chat): e-mail can come back, to the address the link went to.
    follow(client, site, post(client, home, f"{target}/channels", channels=["email"]))
    stored = site.stored("dana services")
    assert stored is not None
    assert (stored.channels, stored.addresses) == (["email"], {"email": "dana@example.org"})


def test_a_subscription_left_with_only_its_feed_is_no_longer_listed(
    site: Site, client: httpx.Client
) -> None:
    home, target = site.manage("dana engineering"), f"/s/{pid(site, 'dana services')}"
    follow(client, site, post(client, home, f"{target}/channels", channels=["rss"]))
    assert "dana services" not in client.get(home).text
    assert client.get(home + target).status_code == 404


def test_when_the_links_own_leaves_the_address_the_page_goes_on_with_another(
    site: Site, client: httpx.Client
) -> None:
    home, target = site.manage("dana services"), f"/s/{pid(site, 'dana services')}"
    answer = post(client, home, f"{target}/channels", channels=["rss"])
    moved = answer.headers["location"]
    assert moved != home.removeprefix(site.url)
    page = follow(client, site, answer)
    assert "dana engineering" in page.text


def test_a_channel_needing_a_new_address_or_none_at_all_is_refused(
    site: Site, client: httpx.Client
) -> None:
    home, target = site.manage("a feed"), f"/s/{pid(site, 'a feed')}"
    page = client.get(home + target + "?lang=en")
    assert 'value="rss"' in page.text
    assert 'value="email"' not in page.text
    assert "subscribe again with it" in page.text
    refused = post(client, home, f"{target}/channels", channels=["email"])
    assert refused.status_code == 400
    none = post(client, home, f"{target}/channels")
    assert none.status_code == 400
    assert 'id="channels-error" role="alert">Keep at least one channel' in none.text
    stored = site.stored("a feed")
    assert stored is not None
    assert stored.channels == ["rss"]


def test_editing_the_rule_and_the_name(site: Site, client: httpx.Client) -> None:
    home, target = site.manage("dana services"), f"/s/{pid(site, 'dana services')}"
    answer = post(
        client, home, f"{target}/edit", name="dana: maintenance", query="תחזוקה", kinds="tender"
    )
    assert "dana: maintenance" in follow(client, site, answer).text
    stored = site.stored("dana services")
    assert stored is not None
    assert (stored.name, stored.rule) == (
        "dana: maintenance",
        {"query": "תחזוקה", "kinds": ["tender"]},
    )
    assert (stored.active, stored.cadence) == (True, "daily")


def test_a_name_another_subscription_has_gets_a_number(site: Site, client: httpx.Client) -> None:
    home, target = site.manage("dana services"), f"/s/{pid(site, 'dana services')}"
    follow(client, site, post(client, home, f"{target}/edit", name="omer", query="שירותי"))
    stored = site.stored("dana services")
    assert stored is not None
    assert stored.name == "omer (2)"


@pytest.mark.parametrize(
    ("fields", "marked"),
    [
        ({"name": "x", "query": '"unclosed'}, 'id="query" name="query"'),
        ({"name": " ", "query": "שירותי"}, 'id="name" name="name"'),
        (
            {"name": "x", "query": "שירותי", "amount_min": "lots"},
            'id="amount_min" name="amount_min"',
        ),
    ],
)
def test_a_bad_edit_shows_its_errors_in_place_and_changes_nothing(
    site: Site, client: httpx.Client, fields: dict[str, str], marked: str
) -> None:
    home, target = site.manage("dana services"), f"/s/{pid(site, 'dana services')}"
    answer = post(client, home, f"{target}/edit", **fields)
    assert answer.status_code == 400
    field = re.search(rf"<input [^>]*{marked}[^>]*>", answer.text)
    assert field is not None, answer.text
    assert 'aria-invalid="true"' in field[0]
    assert 'class="field-error"' in answer.text
    # The language switch leads to the settings page, not to the form's target.
    assert f'href="{home.removeprefix(site.url)}{target}?lang=en"' in answer.text
    stored = site.stored("dana services")
    assert stored is not None
    assert stored.rule == {"query": "שירותי"}


def test_deleting_one_then_the_links_own_moves_to_a_fresh_link(
    site: Site, client: httpx.Client
) -> None:
    home = site.manage("dana services")
    answer = post(client, home, f"/s/{pid(site, 'dana engineering')}/delete")
    assert answer.headers["location"] == home.removeprefix(site.url)
    assert "נמחק: \u2068dana engineering\u2069" in follow(client, site, answer).text
    assert site.stored("dana engineering") is None
    # Add one back, then delete the link's own: its link dies, the page goes on.
    with Session(site.agent.db, expire_on_commit=False) as session:
        given = subscriptions.SubscriptionInput.model_validate({**PEOPLE[1], "name": "dana again"})
        subscriptions.save(session, given, now=NOW)
        session.commit()
    answer = post(client, home, f"/s/{pid(site, 'dana services')}/delete")
    moved = answer.headers["location"]
    assert moved.startswith("/manage/")
    assert moved != home.removeprefix(site.url)
    page = follow(client, site, answer)
    assert "dana again" in page.text
    assert "dana services" in page.text
    assert client.get(home).status_code == 404


def test_leaving_everything_asks_first_then_says_goodbye(site: Site, client: httpx.Client) -> None:
    home = site.manage("dana services")
    asked = client.get(home + "/leave")
    assert asked.status_code == 200
    assert "dana engineering" in asked.text
    assert "omer" not in asked.text
    assert site.stored("dana services") is not None
    answer = post(client, home, "/leave")
    assert answer.headers["location"] == "/manage/goodbye"
    goodbye = follow(client, site, answer)
    assert '<html lang="he"' in goodbye.text
    assert "להתראות" in goodbye.text
    assert site.stored("dana services") is None
    assert site.stored("dana engineering") is None
    assert site.stored("omer") is not None


def test_deleting_the_last_one_says_goodbye(site: Site, client: httpx.Client) -> None:
    home = site.manage("omer")
    answer = post(client, home, f"/s/{pid(site, 'omer')}/delete")
    assert answer.headers["location"] == "/manage/goodbye"
    assert "إلى اللقاء" in follow(client, site, answer).text


@pytest.mark.parametrize("action", ["pause", "resume", "delete", "cadence", "edit"])
def test_a_link_cannot_reach_a_subscription_at_another_address(
    site: Site, client: httpx.Client, action: str
) -> None:
    home, other = site.manage("dana services"), f"/s/{pid(site, 'omer')}"
    answer = post(client, home, f"{other}/{action}", cadence="weekly", name="x", query="y")
    assert answer.status_code == 404
    assert client.get(home + other).status_code == 404
    stored = site.stored("omer")
    assert stored is not None
    assert (stored.active, stored.cadence, stored.name) == (True, "immediate", "omer")


def test_a_post_without_the_csrf_token_is_refused(site: Site, client: httpx.Client) -> None:
    home = site.manage("dana services")
    client.get(home)
    target = f"{home}/s/{pid(site, 'dana services')}"
    assert client.post(f"{target}/pause").status_code == 403
    assert client.post(f"{target}/pause", data={"csrf_token": "guess"}).status_code == 403
    assert client.post(f"{home}/leave").status_code == 403
    stored = site.stored("dana services")
    assert stored is not None
    assert stored.active


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("dana services", "תוקף הקישור פג"),
        ("omer", "انتهت صلاحية هذا الرابط"),
        ("dana engineering", "This link has expired"),
    ],
)
def test_an_expired_manage_link_says_a_newer_message_has_a_fresh_one(
    site: Site, client: httpx.Client, name: str, message: str
) -> None:
    long_ago = Links(site.url, KEY, clock=lambda: NOW - timedelta(days=40))
    old = long_ago.manage_url(site.subs[name])
    shown = client.get(old)
    assert shown.status_code == 410
    assert message in shown.text
    assert f'lang="{site.subs[name].language}"' in shown.text
    token = csrf(client.get(site.manage("omer")))
    target = f"{old}/s/{pid(site, name)}/pause"
    assert client.post(target, data={"csrf_token": token}).status_code == 410
    stored = site.stored(name)
    assert stored is not None
    assert stored.active


@pytest.mark.parametrize("token", ["nonsense", "a" * 22 + ".1.deadbeef", "%00"])
def test_a_link_that_is_not_one_is_not_found(site: Site, client: httpx.Client, token: str) -> None:
    assert client.get(f"{site.url}/manage/{token}").status_code == 404
    assert client.get(f"{site.url}/manage/{token}/leave").status_code == 404


def test_an_unsubscribe_link_does_not_manage(site: Site, client: httpx.Client) -> None:
    unsubscribe = site.agent.links.unsubscribe_url(site.subs["omer"]).rsplit("/", 1)[1]
    assert client.get(f"{site.url}/manage/{unsubscribe}").status_code == 404


def test_an_unconfirmed_subscriptions_link_reaches_only_itself(
    site: Site, client: httpx.Client
) -> None:
    with Session(site.agent.db, expire_on_commit=False) as session:
        given = subscriptions.SubscriptionInput.model_validate({**PEOPLE[0], "name": "typed by x"})
        site.subs["typed by x"] = subscriptions.save(session, given, now=NOW, confirmed=False)
        session.commit()
    home = site.manage("typed by x")
    page = client.get(home)
    assert "typed by x" in page.text
    assert "dana services" not in page.text
    assert "ממתין לאישור" in page.text
    refused = post(client, home, f"/s/{pid(site, 'typed by x')}/resume")
    assert refused.status_code == 409
    stored = site.stored("typed by x")
    assert stored is not None
    assert not stored.active
    assert stored.awaiting_confirmation
    # A confirmed subscription's link lists it, still waiting.
    assert "typed by x" in client.get(site.manage("dana services")).text


@pytest.mark.parametrize(("name", "language"), [("dana services", "he"), ("omer", "ar")])
def test_unsubscribe_page_is_the_sites_in_the_subscriptions_language(
    site: Site, client: httpx.Client, name: str, language: str
) -> None:
    link = site.link(site.agent.links.unsubscribe_url(site.subs[name]))
    page = client.get(link)
    assert page.status_code == 200
    assert f'<html lang="{language}" dir="rtl">' in page.text
    assert f'<form method="post" action="{link.removeprefix(site.url)}">' in page.text
    assert 'href="/static/site.css"' in page.text
    assert '<html lang="en"' in client.get(link + "?lang=en").text


def test_one_click_post_without_a_session_unsubscribes_and_offers_the_way_back(
    site: Site,
) -> None:
    link = site.link(site.agent.links.unsubscribe_url(site.subs["dana services"]))
    # RFC 8058: a POST with this body, no cookies, no redirect.
    done = httpx.post(link, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    assert "ההרשמה בוטלה" in done.text
    stored = site.stored("dana services")
    assert stored is not None
    assert not stored.active
    assert site.statuses("dana services") == {DeliveryStatus.CANCELLED}
    back = re.search(r'href="(/manage/[^"]+)"', done.text)
    assert back is not None
    assert 'href="/subscribe"' in done.text
    with httpx.Client() as http:
        page = http.get(site.url + back[1])
        assert page.status_code == 200
        assert "מושהה" in page.text
        follow(
            http, site, post(http, site.url + back[1], f"/s/{pid(site, 'dana services')}/resume")
        )
    stored = site.stored("dana services")
    assert stored is not None
    assert stored.active


def test_every_language_has_the_same_strings() -> None:
    folder = ROOT / "templates" / "web" / "i18n"
    keys = {}
    for language in ("he", "ar", "en"):
        with (folder / language / "manage.toml").open("rb") as file:
            keys[language] = _flat(tomllib.load(file))
    assert keys["he"] == keys["ar"] == keys["en"]


def _flat(table: dict[str, Any], prefix: str = "") -> set[str]:
    found = set()
    for key, value in table.items():
        found |= _flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key}
    return found


def test_a_shared_subscription_changed_through_its_links_is_logged(
    site: Site, client: httpx.Client
) -> None:
    # A team address's alerts carry manage and unsubscribe links: whoever holds
    # them acts without a login, and the organisation's log says so.
    with Session(site.agent.db, expire_on_commit=False) as session:
        org = Organisation(slug="team", name="Team", created_at=NOW)
        session.add(org)
        session.flush()
        shared = session.get(Subscription, site.subs["omer"].id)
        assert shared is not None
        shared.organisation_id = org.id
        session.add(shared)
        session.commit()
    home = site.manage("omer")
    follow(client, site, post(client, home, f"/s/{pid(site, 'omer')}/cadence", cadence="weekly"))
    unsubscribe = site.link(site.agent.links.unsubscribe_url(site.subs["omer"]))
    assert client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    with Session(site.agent.db) as session:
        log = session.exec(select(AuditEntry).order_by(AuditEntry.id)).all()  # type: ignore[arg-type]
    assert [(e.actor, e.action) for e in log] == [
        ("subscriber (signed link)", AuditAction.EDITED),
        ("subscriber (signed link)", AuditAction.PAUSED),
    ]
    assert log[0].before is not None
    assert log[0].after is not None
    assert (log[0].before["cadence"], log[0].after["cadence"]) == ("immediate", "weekly")
