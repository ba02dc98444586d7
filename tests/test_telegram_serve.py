"""``smart-agent serve`` talks with Telegram users: the bot polls, connects a chat, stops."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests import databases
from tests.conftest import serve
from tests.fakes import telegram
from tests.fakes.telegram_updates import private_message
from tests.service import TELEGRAM_TOKEN, serving, smart_agent, wait_until
from tests.user import config_text


def test_serve_connects_a_chat_that_sends_the_deep_link_and_exits_cleanly(tmp_path: Path) -> None:
    bot = telegram.build_app(TELEGRAM_TOKEN)
    with serve(bot) as bot_url:
        # Port 0: the test never calls the web server, which takes any free port.
        tables = f'[server]\nport = 0\n\n[notifiers.telegram]\nbase_url = "{bot_url}/bot"\n'
        (tmp_path / "config.toml").write_text(
            config_text(databases.url(tmp_path), tables), encoding="utf-8"
        )
        smart_agent(tmp_path, "init")
        smart_agent(tmp_path, "subscriptions", "add", "team", "-q", "מחשוב", "--channel", "rss",
                    "--language", "en")  # fmt: skip
        links = smart_agent(tmp_path, "subscriptions", "telegram-link", "team").stdout
        found = re.search(r"\?start=([A-Za-z0-9_-]+)", links)
        assert found is not None
        with serving(tmp_path):
            telegram.push(bot, private_message(6001, f"/start {found[1]}", language="en"))
            wait_until(lambda: telegram.texts(bot, 6001), what="the bot's answer")
            listed = json.loads(smart_agent(tmp_path, "subscriptions", "list", "--json").stdout)
        [reply] = telegram.texts(bot, 6001)
        assert reply.startswith("Connected: the alerts of <b>")
        assert listed[0]["channels"] == ["rss", "telegram"]
        assert listed[0]["telegram_chat_id"] == "6001"
        assert {"setMyCommands", "deleteWebhook", "getUpdates"} <= set(bot.state.calls)
