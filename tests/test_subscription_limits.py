"""Validation at the edges: names, addresses and chat ids are checked when saved."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.errors import AgentError
from agent.subscription_files import MAX_IMPORT_BYTES, read_file
from agent.subscriptions import MAX_NAME_LENGTH, SubscriptionInput
from tests import databases
from tests.user import User, config_text


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        pytest.param({"name": "x" * (MAX_NAME_LENGTH + 1)}, "name", id="name too long"),
        pytest.param({"name": ""}, "name", id="empty name"),
        pytest.param({"name": "ngo\r\nBcc: x"}, "name", id="line break in a name"),
        pytest.param(
            {"channels": ["email"], "email": "team@ngo.example\r\nBcc: all@example.org"},
            "email",
            id="CR/LF in an address",
        ),
        pytest.param({"channels": ["email"], "email": "a" * 300 + "@x.org"}, "email", id="long"),
        pytest.param(
            {"channels": ["telegram"], "telegram_chat_id": "-100; DROP"},
            "telegram_chat_id",
            id="not a chat id",
        ),
    ],
)
def test_bad_fields_are_refused_naming_the_field(fields: dict[str, object], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        SubscriptionInput.model_validate({"name": "ngo", "query": "ענן", **fields})


def test_a_name_with_direction_marks_is_fine() -> None:
    name = "\u200fצוות ה-NGO\u200f (\u2068ענן\u2069)"
    assert SubscriptionInput.model_validate({"name": name, "query": "ענן"}).name == name


@pytest.mark.parametrize("chat", ["-1001234567890", "123456789", "@ngo_team_alerts"])
def test_real_chat_ids_and_channel_names_pass(chat: str) -> None:
    entry = SubscriptionInput.model_validate(
        {"name": "ngo", "query": "ענן", "channels": ["telegram"], "telegram_chat_id": chat}
    )
    assert entry.addresses == {"telegram": chat}


def test_an_import_with_a_long_name_says_which_entry(tmp_path: Path) -> None:
    path = tmp_path / "subs.toml"
    path.write_text(
        f'[[subscriptions]]\nname = "{"ש" * 500}"\nquery = "ענן"\nchannels = ["rss"]\n',
        encoding="utf-8",
    )
    with pytest.raises(AgentError, match=r"subscriptions\[0\].*\n.*name"):
        read_file(path, available=["rss"])


def test_add_refuses_a_long_name_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(config_text(databases.url(tmp_path)), encoding="utf-8")
    user = User(tmp_path)
    result = user.run("subscriptions", "add", "n" * 1000, "-q", "ענן", "--channel", "rss", code=1)
    assert "name" in result.stderr
    assert user.run("subscriptions", "list").stdout.strip() in ("", "no subscriptions")


def test_a_deeply_nested_json_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "subs.json"
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(AgentError, match="nested too deeply"):
        read_file(path, available=["rss"])


def test_an_import_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(config_text(databases.url(tmp_path)), encoding="utf-8")
    huge = tmp_path / "subscriptions.toml"
    with huge.open("wb") as file:
        file.truncate(MAX_IMPORT_BYTES + 1)  # sparse: nothing is written to the disk
    result = User(tmp_path).run("subscriptions", "import", str(huge), code=1)
    assert f"is over the {MAX_IMPORT_BYTES:,} an import may have" in result.stderr
