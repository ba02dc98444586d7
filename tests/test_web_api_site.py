"""What the JSON API's tests share: a real Agent over the CKAN fake and an SMTP fake, served.

``api_site(folder)`` opens an ``Agent`` on a fresh database
(``tests.databases``) whose source is the CKAN fake with the recorded 2017 tenders (polled once) and
whose e-mail goes to a real SMTP server (aiosmtpd), and serves
``create_app(agent)`` on loopback in the test's own event loop, as
``smart-agent serve`` runs them together: the channels' connections (SMTP)
and the HTTP client opened by requests stay in the loop that closes them.
So every client of a test is async. The clock is the test's: 2017-07-01,
moved forward to expire tokens. The public URL is plain http, so the
session cookie (Secure only behind https) reaches the test's client.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlmodel import Session
from starlette.applications import Starlette
from starlette.types import ASGIApp

from agent import accounts, subscriptions
from agent.config import build_config
from agent.links import Purpose
from agent.models import Subscription
from agent.service import Agent
from agent.web import create_app
from tests import databases
from tests.conftest import ROOT, serve
from tests.fakes import ckan
from tests.fakes.smtp import Mailbox, smtp_in_thread
from tests.samples import Clock
from tests.service import Switch

NOW = datetime(2017, 7, 1, 9, 0, tzinfo=UTC)
PUBLIC_URL = "http://alerts.example.org"
ADMIN_EMAIL = "admin@ngo.example"
MEMBER_EMAIL = "member@ngo.example"
PASSWORD = "correct horse battery staple"
#: The source's name in the configuration.
SOURCE = "tenders"


@dataclass
class ApiSite:
    """The running agent, its URL, its mailbox and its source (swappable)."""

    agent: Agent
    app: Starlette
    url: str
    mail: Mailbox
    source: Switch
    clock: Clock

    def api(self, path: str) -> str:
        """The full URL of an API path (``/items`` → ``.../api/v1/items``)."""
        return f"{self.url}/api/v1{path}"

    def subscribe(self, name: str, **fields: Any) -> Subscription:
        """Save a subscription as the CLI would (confirmed unless told otherwise)."""
        confirmed = fields.pop("confirmed", True)
        organisation_id = fields.pop("organisation_id", None)
        entry = subscriptions.SubscriptionInput.model_validate({"name": name, **fields})
        with Session(self.agent.db, expire_on_commit=False) as session:
            sub = subscriptions.save(
                session,
                entry,
                now=self.clock(),
                confirmed=confirmed,
                organisation_id=organisation_id,
            )
            session.commit()
        return sub

    def token(self, sub: Subscription, purpose: Purpose = Purpose.MANAGE) -> str:
        """The subscription's signed token, as the last part of its link."""
        return self.agent.links.sign(sub, purpose)

    def stored(self, sub_id: int | None) -> Subscription | None:
        """The subscription as stored now."""
        with Session(self.agent.db) as session:
            return session.get(Subscription, sub_id)

    def api_key(self, name: str = "reports") -> str:
        """A new API key, as ``smart-agent admin create-api-key`` makes it."""
        with Session(self.agent.db) as session:
            key = accounts.create_api_key(session, name, now=self.clock())
            session.commit()
        return key

    def user(self, email: str, *, admin: bool) -> None:
        """A login, as ``smart-agent admin create-user`` makes it."""
        with Session(self.agent.db) as session:
            accounts.create_user(session, email, PASSWORD, now=self.clock(), admin=admin)
            session.commit()

    @contextlib.asynccontextmanager
    async def logged_in(self, email: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
        """A client logged in through the login page, and its session's CSRF token."""
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as client:
            form = await client.get("/login")
            posted = await client.post(
                "/login",
                data={"email": email, "password": PASSWORD, "csrf_token": csrf_in(form.text)},
            )
            assert posted.status_code == 303, posted.text
            yield client, csrf_in((await client.get("/api/docs")).text)


def csrf_in(html: str) -> str:
    """The CSRF token in a page's forms."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, "no CSRF token on the page"
    return found[1]


def bearer(token: str) -> dict[str, str]:
    """The Authorization header carrying ``token``."""
    return {"Authorization": f"Bearer {token}"}


@contextlib.asynccontextmanager
async def api_site(folder: Path, *, poll: bool = True) -> AsyncIterator[ApiSite]:
    """Serve the web app over a fresh agent (the source polled once unless ``poll`` is off)."""
    source = Switch(ckan.build_app())
    clock = Clock(NOW)
    with smtp_in_thread() as mail, serve(source) as source_url:
        config = build_config(
            {
                "agent": {
                    "database_url": databases.url(folder),
                    "templates_dir": str(ROOT / "templates"),
                    "public_url": PUBLIC_URL,
                    "signing_key": "api-test-signing-key",
                },
                "notifiers": {
                    "email": {
                        "host": mail.host,
                        "port": mail.port,
                        "from_address": "Smart Agent <alerts@example.org>",
                    }
                },
                "sources": {
                    SOURCE: {"kind": "ckan", "base_url": source_url, "alert_on_first_poll": True}
                },
            },
            base_dir=folder,
        )
        async with Agent.open(config, clock=clock) as agent:
            if poll:
                await agent.poll_all()
            app = create_app(agent)
            async with serve_here(app) as url:
                yield ApiSite(agent, app, url, mail, source, clock)


@contextlib.asynccontextmanager
async def serve_here(app: ASGIApp) -> AsyncIterator[str]:
    """Serve ``app`` on a free loopback port in this event loop; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(1000):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        if not server.started:
            raise RuntimeError("the web app did not start")
        host, port = sock.getsockname()
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()
