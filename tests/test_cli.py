"""The command line, run as a user runs it: subscriptions, rules, deliveries.

More in ``test_cli_subscriptions.py`` (what ``add`` and ``import`` refuse),
``test_cli_operations.py`` (exit statuses for cron) and ``test_cli_dev.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import databases
from tests.conftest import serve
from tests.fakes import ckan
from tests.user import User, config_text


@pytest.fixture
def user(tmp_path: Path) -> Iterator[User]:
    with serve(ckan.build_app()) as url:
        source = f"""
[sources.tenders]
kind = "ckan"
base_url = "{url}"
alert_on_first_poll = true
"""
        (tmp_path / "config.toml").write_text(
            config_text(databases.url(tmp_path), source), encoding="utf-8"
        )
        yield User(tmp_path)


def test_add_list_and_remove_a_subscription(user: User) -> None:
    out = user.run(
        "subscriptions",
        "add",
        "cloud",
        "-q",
        'מחשוב OR "שירותי ענן"',
        "--kind",
        "tender",
        "--amount-min",
        "500000",
        "--channel",
        "rss",
    ).stdout
    assert "subscription 1 'cloud' saved" in out
    listed = json.loads(user.run("subscriptions", "list", "--json").stdout)
    assert listed[0]["name"] == "cloud"
    assert listed[0]["feed_url"].startswith("http://127.0.0.1:8080/feeds/")
    base = listed[0]["feed_url"].removesuffix(".xml")
    assert (listed[0]["rss_url"], listed[0]["calendar_url"]) == (f"{base}.rss", f"{base}.ics")
    assert f"rss: {listed[0]['rss_url']}\ncalendar: {listed[0]['calendar_url']}" in out
    assert listed[0]["rule"]["kinds"] == ["tender"]
    user.run("subscriptions", "remove", "cloud")
    assert json.loads(user.run("subscriptions", "list", "--json").stdout) == []


def test_a_bad_query_says_where_it_is_wrong(user: User) -> None:
    result = user.run(
        "subscriptions", "add", "broken", "-q", "מחשוב OR (ענן", "--channel", "rss", code=1
    )
    assert "position" in result.stderr
    assert "^" in result.stderr


def test_a_bad_subscription_file_names_the_entry_and_imports_nothing(user: User) -> None:
    (user.folder / "subs.toml").write_text(
        """
[[subscriptions]]
name = "fine"
query = "ביטוח"
channels = ["rss"]

[[subscriptions]]
name = "typo"
querry = "ביטוח"
channels = ["rss"]
""",
        encoding="utf-8",
    )
    result = user.run("subscriptions", "import", "subs.toml", code=1)
    assert "subscriptions[1]" in result.stderr
    assert "querry" in result.stderr
    assert json.loads(user.run("subscriptions", "list", "--json").stdout) == []


def test_json_subscription_files_import_too(user: User) -> None:
    entries = [
        {
            "name": "budget",
            "query": "change>=5000000",
            "kinds": ["budget_change"],
            "language": "ar",
            "channels": ["rss"],
        }
    ]
    (user.folder / "subs.json").write_text(json.dumps({"subscriptions": entries}), "utf-8")
    assert "imported 1" in user.run("subscriptions", "import", "subs.json").stdout


def test_why_explains_a_delivery_and_replay_requeues_it(user: User) -> None:
    user.run("subscriptions", "add", "staff", "-q", '"כוח אדם"', "--channel", "rss")
    user.run("run-once")
    listing = user.run("deliveries", "list").stdout
    delivery_id = listing.split()[0]
    why = user.run("deliveries", "why", delivery_id).stdout
    assert "for subscription 'staff'" in why
    assert "matched because:" in why
    assert "כוח" in why
    assert "queued 1" in user.run("deliveries", "replay", delivery_id).stdout


def test_rules_test_backtests_a_query_over_the_stored_items(user: User) -> None:
    user.run("run-once")
    out = user.run("rules", "test", "שירותי", "--since", "5000d").stdout
    assert "matches since" in out
    assert "week of" in out
    assert "newest matches:" in out


def test_rules_diff_shows_what_an_edit_would_change(user: User) -> None:
    user.run("subscriptions", "add", "services", "-q", "שירותי", "--channel", "rss")
    user.run("run-once")
    out = user.run(
        "rules", "diff", "services", "שירותי", "--kind", "exemption", "--since", "5000d"
    ).stdout
    assert "+0 / -" in out
    assert "would be removed:" in out


def test_sources_check_reports_health_without_alerting(user: User) -> None:
    out = user.run("sources", "check").stdout
    assert "ok   tenders: 21 items" in out
