"""What ``subscriptions add`` and ``subscriptions import`` refuse, and ``--config`` anywhere.

A newcomer's mistakes (a typo in an address, a forgotten channel, a channel the
configuration does not set up, a name already taken) are refused with a message
that says what to do, and nothing is saved.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import databases
from tests.user import User, config_text

CLOUD = ("-q", "מחשוב OR ענן")


@pytest.fixture
def user(tmp_path: Path) -> User:
    (tmp_path / "config.toml").write_text(config_text(databases.url(tmp_path)), encoding="utf-8")
    return User(tmp_path)


def saved(user: User, *config: str) -> list[dict[str, object]]:
    listed: list[dict[str, object]] = json.loads(
        user.run("subscriptions", "list", "--json", *config).stdout
    )
    return listed


def test_config_is_accepted_after_the_command_too(tmp_path: Path) -> None:
    # The folder has no config.toml: every command must use the one named.
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "my.toml").write_text(
        config_text(databases.url(tmp_path)), encoding="utf-8"
    )
    user = User(tmp_path)
    config = ("--config", "elsewhere/my.toml")
    user.run("subscriptions", "add", "cloud", *CLOUD, "--channel", "rss", *config)
    user.run("subscriptions", *config, "add", "budget", "-q", "תקציב", "--channel", "rss")
    user.run(*config, "subscriptions", "add", "staff", "-q", "כוח", "--channel", "rss")
    assert [s["name"] for s in saved(user, *config)] == ["cloud", "budget", "staff"]
    assert "delivered: 0 sent" in user.run("run-once", *config).stdout
    # The one nearest the command wins.
    user.run("--config", "missing.toml", "subscriptions", "list", *config)
    missing = user.run("subscriptions", "list", code=2)
    assert "config.toml: no such configuration file" in missing.stderr


def test_an_existing_name_is_kept_unless_replace_is_given(user: User) -> None:
    user.run("subscriptions", "add", "cloud", *CLOUD, "--channel", "rss")
    [before] = saved(user)
    again = user.run("subscriptions", "add", "cloud", "-q", "ביטוח", "--channel", "rss", code=1)
    assert "subscription 'cloud' already exists (id 1); give --replace" in again.stderr
    assert saved(user) == [before]
    out = user.run(
        "subscriptions", "add", "cloud", "-q", "ביטוח", "--channel", "rss", "--replace"
    ).stdout
    assert "subscription 1 'cloud' replaced" in out
    [after] = saved(user)
    assert after["rule"] == {"query": "ביטוח"}
    assert after["feed_url"] == before["feed_url"], "replacing keeps the feed's address"


@pytest.mark.parametrize("address", ["team@", "team at ngo.example", "team@ngo", "a@b.test"])
def test_an_invalid_email_address_is_refused(user: User, address: str) -> None:
    result = user.run(
        "subscriptions", "add", "cloud", *CLOUD, "--channel", "email", "--email", address, code=1
    )
    assert "subscription 'cloud':\n  email: " in result.stderr
    assert saved(user) == []


def test_an_email_address_is_stored_normalised(user: User) -> None:
    user.run(
        "subscriptions", "add", "cloud", *CLOUD, "--channel", "email", "--email", "Team@NGO.Example"
    )
    assert saved(user)[0]["email"] == "Team@ngo.example"


def test_a_subscription_without_a_channel_is_refused_with_the_choices(user: User) -> None:
    result = user.run("subscriptions", "add", "cloud", *CLOUD, code=2)
    assert "Missing option '--channel'" in result.stderr
    for channel in ("email", "telegram", "rss"):
        assert channel in result.stderr
    assert saved(user) == []


@pytest.mark.parametrize(("channel", "needs"), [("email", "--email"), ("telegram", "--telegram")])
def test_a_channel_without_its_address_is_refused(user: User, channel: str, needs: str) -> None:
    result = user.run("subscriptions", "add", "cloud", *CLOUD, "--channel", channel, code=2)
    assert f"the {channel} channel needs {needs}" in result.stderr
    assert saved(user) == []


def test_an_unconfigured_channel_is_refused_saying_how_to_configure_it(user: User) -> None:
    telegram = ("--channel", "telegram", "--telegram", "-1001234567890")
    result = user.run("subscriptions", "add", "cloud", *CLOUD, *telegram, code=1)
    assert "the telegram channel is not configured" in result.stderr
    assert "SMART_AGENT_NOTIFIERS__TELEGRAM__TOKEN" in result.stderr
    assert saved(user) == []
    # Once the token is set, the same command is accepted.
    user.env["SMART_AGENT_NOTIFIERS__TELEGRAM__TOKEN"] = "123456:TEST-token"
    user.run("subscriptions", "add", "cloud", *CLOUD, *telegram)
    assert [s["channels"] for s in saved(user)] == [["telegram"]]


GOOD = """
[[subscriptions]]
name = "fine"
query = "ביטוח"
channels = ["rss"]
"""


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('channels = ["email"]\nemail = "team@"', "email: "),
        ("", "'channels' is missing"),
        ('channels = ["email"]', "the email channel needs an 'email'"),
        ('channels = ["telegram"]', "the telegram channel needs a 'telegram_chat_id'"),
        (
            'channels = ["telegram"]\ntelegram_chat_id = "-100"',
            "the telegram channel is not configured",
        ),
        ('channels = ["pigeon"]', "no channel 'pigeon': the channels are email, telegram, rss"),
    ],
)
def test_import_refuses_what_add_refuses_and_imports_nothing(
    user: User, entry: str, message: str
) -> None:
    bad = f'\n[[subscriptions]]\nname = "bad"\nquery = "ענן"\n{entry}\n'
    (user.folder / "subs.toml").write_text(GOOD + bad, encoding="utf-8")
    result = user.run("subscriptions", "import", "subs.toml", code=1)
    assert "subs.toml: subscriptions[1] (bad)" in result.stderr
    assert message in result.stderr
    assert saved(user) == []


def test_import_refuses_a_name_used_twice(user: User) -> None:
    (user.folder / "subs.toml").write_text(GOOD + GOOD, encoding="utf-8")
    result = user.run("subscriptions", "import", "subs.toml", code=1)
    assert "subscriptions[1]: the name 'fine' is used twice" in result.stderr
    assert saved(user) == []


def test_import_again_updates_and_says_so(user: User) -> None:
    (user.folder / "subs.toml").write_text(GOOD, encoding="utf-8")
    assert "(1 new, 0 updated)" in user.run("subscriptions", "import", "subs.toml").stdout
    assert "(0 new, 1 updated)" in user.run("subscriptions", "import", "subs.toml").stdout
    assert [s["name"] for s in saved(user)] == ["fine"]
