"""The web app as people use it: the real ``serve`` in a child process, a real browser.

``live_site(folder)`` starts ``smart-agent serve`` against the local fakes (a
CKAN server with the recorded tenders, aiosmtpd, the Telegram Bot API fake),
after ``init`` and ``admin create-user`` ran as a user would run them.
Pages are opened in Debian's Chromium driven by Playwright (``.ci/run``
installs the package; ``playwright install`` cannot download here).

``assert_accessible(page)`` runs axe-core (bundled by axe-playwright-python)
and fails on any serious or critical violation; ``screenshot(page, name)``
saves ``docs/screenshots/<name>.png`` (``SMART_AGENT_SCREENSHOTS`` moves it),
the pictures the README shows.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
from starlette.applications import Starlette

from tests import databases
from tests.conftest import ROOT, serve
from tests.fakes import ckan, telegram
from tests.fakes.smtp import Mailbox, smtp_in_thread
from tests.service import (
    TELEGRAM_TOKEN,
    Switch,
    assert_clean,
    free_port,
    get,
    serving,
    smart_agent,
    user_env,
    wait_until,
)

#: Where Debian puts Chromium (``apt-get install chromium``); PATH is searched first.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

#: Put on a browser test module: skipped, saying why, where there is no Chromium.
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it: apt-get chromium)"
)

LANGUAGES = ("he", "ar", "en")
ADMIN_EMAIL = "admin@ngo.example"
ADMIN_PASSWORD = "correct horse battery staple"
SCREENSHOTS = Path(os.environ.get("SMART_AGENT_SCREENSHOTS", ROOT / "docs" / "screenshots"))

CONFIG = """
[agent]
database_url = "{database}"
public_url = "http://127.0.0.1:{port}"
templates_dir = "{templates}"
dispatch_every = 1
retry_first = 1
{agent_extra}

[server]
port = {port}

[notifiers.email]
host = "127.0.0.1"
port = {smtp_port}
from_address = "Smart Agent <alerts@example.org>"

[notifiers.telegram]
base_url = "{bot}/bot"

[sources.datagov-tenders]
kind = "ckan"
base_url = "{source}"
dataset = "tenders"
every = 1
"""


@dataclass
class LiveSite:
    """A running ``serve``, the fakes it talks to, and the user's folder."""

    folder: Path
    url: str
    mail: Mailbox
    bot: Starlette
    #: The CKAN fake; set ``source.app`` to change what the source publishes.
    source: Switch
    #: ``serve``'s stderr so far.
    log: Callable[[], str]

    def cli(self, *args: str) -> str:
        """Run ``smart-agent ARGS`` in the site's folder; return its output."""
        return smart_agent(self.folder, *args).stdout

    def mail_to(self, address: str, count: int = 1, timeout: float = 30.0) -> list[EmailMessage]:
        """Wait until ``address`` has ``count`` messages; return them, oldest first."""

        def found() -> list[EmailMessage]:
            return [m for m in self.mail.messages if address in str(m["To"])]

        wait_until(lambda: len(found()) >= count, timeout, f"{count} e-mail(s) to {address}")
        return found()

    def telegram_texts(self, chat_id: str) -> list[str]:
        """What the bot has sent to ``chat_id`` so far."""
        return telegram.texts(self.bot, chat_id)


def links_in(message: EmailMessage) -> list[str]:
    """Every http(s) link in an e-mail's plain-text part."""
    body = message.get_body(("plain",))
    assert body is not None
    return re.findall(r"https?://[^\s<>\"]+", body.get_content())


@contextlib.contextmanager
def live_site(
    folder: Path, records: list[dict[str, Any]] | None = None, *, agent_extra: str = ""
) -> Iterator[LiveSite]:
    """Run ``serve`` in ``folder`` against the fakes until the block ends; its items are polled.

    ``agent_extra`` is more TOML for the ``[agent]`` table (``max_attempts = 1``).
    """
    source = Switch(ckan.build_app(records if records is not None else ckan.real_records()))
    bot = telegram.build_app(TELEGRAM_TOKEN)
    with serve(source) as source_url, serve(bot) as bot_url, smtp_in_thread() as mail:
        port = free_port()
        config = CONFIG.format(
            database=databases.url(folder, "var/agent.db"),
            port=port,
            templates=ROOT / "templates",
            smtp_port=mail.port,
            bot=bot_url,
            source=source_url,
            agent_extra=agent_extra,
        )
        (folder / "config.toml").write_text(config, encoding="utf-8")
        smart_agent(folder, "init")
        create_admin(folder)
        url = f"http://127.0.0.1:{port}"
        with serving(folder) as log:
            wait_until(lambda: _polled(url), 60, "the first poll of the source")
            yield LiveSite(folder, url, mail, bot, source, log)


def create_admin(
    folder: Path, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD, *extra: str
) -> None:
    """``smart-agent admin create-user --password-stdin``, as a set-up script runs it."""
    result = subprocess.run(
        [sys.executable, "-m", "agent", "admin", "create-user", email, "--password-stdin", *extra],
        cwd=folder,
        env=user_env(),
        input=f"{password}\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert_clean(result.stderr)


def _polled(url: str) -> bool:
    answer = get(f"{url}/health")
    return answer is not None and answer.json().get("status") == "ok"


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, through Playwright."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def visitor(browser: Browser, site: LiveSite, language: str = "he") -> Iterator[Page]:
    """A new visitor (no cookies) whose browser asks for ``language``."""
    context: BrowserContext = browser.new_context(
        base_url=site.url, locale={"he": "he-IL", "ar": "ar", "en": "en-GB"}[language]
    )
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
    finally:
        context.close()


def log_in(page: Page, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> None:
    """Log in through the login page, as a person does."""
    page.goto("/login")
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password]").fill(password)
    page.locator("form[action='/login'] button[type=submit]").click()
    page.wait_for_load_state()


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Run axe-core's default rules (WCAG 2.x A and AA, best practices) on the page."""
    script = (files("axe_playwright_python") / "axe.min.js").read_text(encoding="utf-8")
    page.evaluate(script)
    results: dict[str, Any] = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    violations: list[dict[str, Any]] = results["violations"]
    return violations


def assert_accessible(page: Page) -> None:
    """No serious or critical axe violation; ``lang`` and ``dir`` set on the page."""
    found = [v for v in axe_violations(page) if v["impact"] in ("serious", "critical")]
    summary = [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in found]
    assert not found, f"{page.url}: {summary}"
    lang = page.get_attribute("html", "lang")
    assert lang in LANGUAGES, lang
    assert page.get_attribute("html", "dir") == ("ltr" if lang == "en" else "rtl")


def screenshot(page: Page, name: str) -> Path:
    """Save the whole page as ``<SCREENSHOTS>/<name>.png`` for the README."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
