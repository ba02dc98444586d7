"""The key that signs links: ``init`` makes one, ``serve`` and ``run-once`` refuse to go without.

Every command runs as a child process in a folder of its own, with no
``SMART_AGENT_*`` variable but those a test sets.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session

from agent import db as database
from agent import subscriptions
from agent.config import load_config
from agent.links import Links
from agent.models import Subscription
from tests import databases
from tests.conftest import ROOT
from tests.service import assert_clean, free_port, get, wait_until


def environment(**extra: str) -> dict[str, str]:
    """The test's environment without any ``SMART_AGENT_*`` setting, plus ``extra``."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("SMART_AGENT_")}
    return kept | extra


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder with a configuration that names no signing key."""
    (tmp_path / "config.toml").write_text(
        f"""
[agent]
database_url = "{databases.url(tmp_path)}"
templates_dir = "{ROOT / "templates"}"
public_url = "http://127.0.0.1:{free_port()}"

[server]
port = {free_port()}
""",
        encoding="utf-8",
    )
    return tmp_path


def smart_agent(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``smart-agent ARGS`` in ``folder``; its stderr must be clean."""
    result = subprocess.run(
        [sys.executable, "-m", "agent", *args],
        cwd=folder,
        env=environment(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_clean(result.stderr)
    return result


@contextlib.contextmanager
def serving(folder: Path, *args: str) -> Iterator[str]:
    """Run ``smart-agent serve ARGS`` until it answers; yield its URL; stop it (exit 0)."""
    text = (folder / "config.toml").read_text(encoding="utf-8")
    port = int(text.split("port = ")[1].split()[0])
    url = f"http://127.0.0.1:{port}"
    log = folder / "serve.log"
    with (
        log.open("w", encoding="utf-8") as sink,
        subprocess.Popen(
            [sys.executable, "-m", "agent", "serve", *args],
            cwd=folder,
            env=environment(),
            stdout=subprocess.DEVNULL,
            stderr=sink,
        ) as child,
    ):
        try:
            wait_until(lambda: (answer := get(f"{url}/health/live")) and answer.status_code == 200)
            yield url
        finally:
            child.send_signal(signal.SIGTERM)
            child.wait(timeout=30)
    assert child.returncode == 0, log.read_text(encoding="utf-8")
    assert_clean(log.read_text(encoding="utf-8"))


@pytest.mark.parametrize("command", ["serve", "worker", "run-once"])
def test_a_service_without_a_signing_key_refuses_to_start(folder: Path, command: str) -> None:
    result = smart_agent(folder, command)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert "no signing key" in line
    assert "smart-agent init" in line
    assert "SMART_AGENT_AGENT__SIGNING_KEY" in line
    assert not databases.migrated(database_of(folder))


@pytest.mark.parametrize("where", ["file", "environment"])
def test_the_published_placeholder_key_is_refused(folder: Path, where: str) -> None:
    env = {"SMART_AGENT_AGENT__SIGNING_KEY": "change-me"} if where == "environment" else {}
    if where == "file":
        config = folder / "config.toml"
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace("[agent]", '[agent]\nsigning_key = "change-me"'))
    result = smart_agent(folder, "serve", **env)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert "'change-me'" in line
    assert "forge" in line


def test_init_creates_a_private_key_once_and_serve_signs_with_it(folder: Path) -> None:
    made = smart_agent(folder, "init")
    assert made.returncode == 0, made.stderr
    path = folder / "var" / "signing.key"
    assert f"signing key created: {path}" in made.stdout
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = path.read_text(encoding="utf-8").strip()
    assert len(key) >= 40
    again = smart_agent(folder, "init")
    assert again.returncode == 0
    assert "signing key created" not in again.stdout
    assert path.read_text(encoding="utf-8").strip() == key  # never overwritten
    sub = subscribe(folder)
    with serving(folder) as url:
        link = Links(url, key, clock=lambda: datetime.now(UTC)).unsubscribe_url(sub)
        forged = Links(url, "change-me", clock=lambda: datetime.now(UTC)).unsubscribe_url(sub)
        assert httpx.post(forged).status_code == 404
        assert httpx.post(link).status_code == 200


def test_a_key_from_the_environment_wins_and_init_makes_no_file(folder: Path) -> None:
    made = smart_agent(folder, "init", SMART_AGENT_AGENT__SIGNING_KEY="from-the-environment")
    assert made.returncode == 0, made.stderr
    assert not (folder / "var" / "signing.key").exists()


def test_a_local_trial_starts_without_a_key_and_says_its_links_are_unsafe(folder: Path) -> None:
    with serving(folder, "--local-trial") as url:
        assert (folder / "serve.log").read_text(encoding="utf-8").count("local trial") == 1
        assert get(f"{url}/health/live") is not None


def database_of(folder: Path) -> str:
    """The database URL of the folder's configuration."""
    return load_config(folder / "config.toml").database_url


def subscribe(folder: Path) -> Subscription:
    """Store a subscription in the folder's database, as ``subscriptions add`` does."""
    engine = database.connect(database_of(folder))
    entry = subscriptions.SubscriptionInput.model_validate(
        {"name": "cloud", "query": "ענן", "channels": ["rss"]}
    )
    with Session(engine, expire_on_commit=False) as session:
        sub = subscriptions.save(session, entry, now=datetime.now(UTC))
        session.commit()
    engine.dispose()
    return sub
