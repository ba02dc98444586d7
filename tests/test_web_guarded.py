"""Nobody without a login reaches an admin page or endpoint; secrets never leak.

Every route of the real app is walked: each ``/admin`` page (GET and POST)
sends an anonymous visitor to the login page, each ``/api/v1/admin`` endpoint
answers 401. Then ``serve`` runs with every secret set while its mail server
and its Telegram API fail: neither its log, nor the ledger, nor any error page
shows a secret.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.routing import BaseRoute, Mount, Route

from agent.config import build_config
from agent.service import Agent
from agent.web import create_app
from tests import databases
from tests.conftest import ROOT, serve
from tests.fakes import ckan, telegram
from tests.service import (
    SIGNING_KEY,
    TELEGRAM_TOKEN,
    Switch,
    free_port,
    serving,
    smart_agent,
    wait_until,
)

SMTP_PASSWORD = "smtp-secret-password-42"
SECRETS = (SIGNING_KEY, TELEGRAM_TOKEN, TELEGRAM_TOKEN.split(":")[1], SMTP_PASSWORD)


def paths(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, set[str]]]:
    """Every route's path (parameters filled in) and methods, mounts included."""
    for route in routes:
        if isinstance(route, Mount):
            yield from paths(list(route.routes), prefix + route.path)
        elif isinstance(route, Route):
            path = re.sub(r"\{[^}]+\}", "1", prefix + route.path)
            yield path, set(route.methods or ())


@pytest.fixture
async def app_url(tmp_path: Path) -> AsyncIterator[tuple[str, list[BaseRoute]]]:
    config = build_config(
        {"agent": {"database_url": databases.url(tmp_path), "signing_key": "k"}},
        base_dir=tmp_path,
    )
    async with Agent.open(config) as agent:
        app = create_app(agent)
        with serve(app) as url:
            yield url, list(app.routes)


async def test_no_admin_page_or_endpoint_answers_an_anonymous_visitor(
    app_url: tuple[str, list[BaseRoute]],
) -> None:
    url, routes = app_url
    guarded = [(p, m) for p, m in paths(routes) if p.startswith(("/admin", "/api/v1/admin"))]
    assert len(guarded) >= 15, guarded
    async with httpx.AsyncClient(base_url=url) as http:
        for path, methods in guarded:
            for method in sorted(methods - {"HEAD"}):
                answer = await http.request(method, path)
                if path.startswith("/api/"):
                    assert answer.status_code == 401, (method, path, answer.text)
                else:
                    assert answer.status_code in (303, 403), (method, path, answer.status_code)
                    if answer.status_code == 303:
                        assert answer.headers["location"].startswith("/login"), (method, path)


CONFIG = """
[agent]
database_url = "{database}"
public_url = "http://127.0.0.1:{port}"
templates_dir = "{templates}"
dispatch_every = 1

[server]
port = {port}

[notifiers.email]
host = "127.0.0.1"
port = {dead_port}
username = "alerts"
from_address = "Smart Agent <alerts@example.org>"

[notifiers.telegram]
base_url = "{bot}/bot"

[sources.tenders]
kind = "ckan"
base_url = "{source}"
dataset = "tenders"
every = 1
alert_on_first_poll = true
"""

SUBSCRIPTIONS = """
[[subscriptions]]
name = "everything"
query = "שירותי OR מכרז OR התקשרות"
channels = ["email", "telegram"]
email = "team@ngo.example"
telegram_chat_id = "-100123"
"""


def test_secrets_stay_out_of_the_log_the_ledger_and_error_pages(tmp_path: Path) -> None:
    bot = telegram.build_app(TELEGRAM_TOKEN)
    switch = Switch(bot)
    os.environ["SMART_AGENT_NOTIFIERS__EMAIL__PASSWORD"] = SMTP_PASSWORD
    try:
        with serve(ckan.build_app()) as source, serve(switch) as bot_url:
            port = free_port()
            config = CONFIG.format(
                database=databases.url(tmp_path),
                port=port,
                templates=ROOT / "templates",
                dead_port=free_port(),  # nobody listens: every e-mail fails
                bot=bot_url,
                source=source,
            )
            (tmp_path / "config.toml").write_text(config, encoding="utf-8")
            (tmp_path / "subscriptions.toml").write_text(SUBSCRIPTIONS, encoding="utf-8")
            smart_agent(tmp_path, "init")
            smart_agent(tmp_path, "subscriptions", "import", "subscriptions.toml")
            bot.state.failures.extend(["server_error"] * 50)  # and every Telegram message
            with serving(tmp_path) as log:
                wait_until(lambda: _failed_on_both(tmp_path), 60, "both channels to fail")
                pages = [
                    httpx.get(f"http://127.0.0.1:{port}{path}", headers=headers)
                    for path, headers in (
                        ("/no-such-page", {}),
                        ("/manage/forged.1.abc", {}),
                        ("/api/v1/admin/deliveries", {"authorization": f"Bearer {SIGNING_KEY}"}),
                        ("/api/v1/subscription", {"authorization": "Bearer x"}),
                    )
                ]
                logged = log()
            ledger = smart_agent(tmp_path, "deliveries", "list", "--status", "retrying").stdout
    finally:
        del os.environ["SMART_AGENT_NOTIFIERS__EMAIL__PASSWORD"]
    for text in (logged, ledger, *(page.text for page in pages)):
        for secret in SECRETS:
            assert secret not in text


def _failed_on_both(folder: Path) -> bool:
    """Whether an e-mail and a Telegram message have each failed at least once."""
    ledger = smart_agent(folder, "deliveries", "list", "--status", "retrying").stdout
    return "email" in ledger and "telegram" in ledger


def test_a_token_telegram_refuses_is_named_but_never_shown(tmp_path: Path) -> None:
    # The fake knows another bot's token: it answers ours 401, as Telegram does.
    bot = telegram.build_app("999:another-bots-token")
    with serve(ckan.build_app()) as source, serve(bot) as bot_url:
        config = CONFIG.format(
            database=databases.url(tmp_path),
            port=free_port(),
            templates=ROOT / "templates",
            dead_port=free_port(),
            bot=bot_url,
            source=source,
        )
        (tmp_path / "config.toml").write_text(config, encoding="utf-8")
        result = smart_agent(tmp_path, "run-once", check=False)

    assert result.returncode == 2, result.stderr
    assert "notifiers.telegram.token: Telegram refused it" in result.stderr
    for secret in SECRETS:
        assert secret not in result.stderr + result.stdout
