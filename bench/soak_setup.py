"""The soak benchmark's stage: PostgreSQL, the workers' configuration, the subscriptions.

PostgreSQL is started as ``tests/postgres.py`` starts it (Debian's server, a
temporary folder, loopback, run as ``postgres`` when we are root), but with
``fsync`` on unless asked otherwise: the soak measures latency, and a server
that never waits for its disk would flatter it.

Subscriptions are stored as ``agent.subscriptions.save`` leaves them, in bulk:
rules from ``bench/workload.py``'s narrow mix (compiled and persisted as the
service does) and channels from the fan-out benchmark's ``CHANNEL_MIX`` (55 %
e-mail, 20 % Telegram, 10 % feed, 10 % e-mail and Telegram, 5 % e-mail and
feed). Every one is ``immediate``, without quiet hours: the soak follows
alerts from the source to the channel, and a digest would only go out at its
hour, after the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlmodel import Session

from agent import db as database
from agent.models import Subscription
from bench import engines, soak_plan
from bench.fanout_db import CHANNEL_MIX
from bench.soak_sinks import TOKEN
from bench.vocab import load_corpus
from bench.workload import Workload
from tests import postgres as pg
from tests.service import free_port

ROOT = Path(__file__).resolve().parents[1]
#: The workers' signing key, given in the environment as the README says.
SIGNING_KEY = "soak-signing-key"
_INSERT_CHUNK = 5000
#: Telegram's limit for one bot, messages a second in all (performance.md §1).
TELEGRAM_PER_SECOND = 30


@contextlib.contextmanager
def postgres(*, fsync: bool = True) -> Iterator[str]:
    """Start a throwaway server; yield the URL of an empty database on it."""
    settings = pg.DURABLE if fsync else pg.FAST
    with pg.running(settings) as server:
        with psycopg.connect(f"{server.admin_url}/postgres", autocommit=True) as connection:
            connection.execute('CREATE DATABASE "soak"')
        yield f"{server.admin_url}/soak"


def server_version(url: str) -> str:
    """The server's version, as it says it."""
    with psycopg.connect(url) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


@dataclass(frozen=True)
class Timing:
    """The service's timing in the soak's configuration, in seconds."""

    poll_every: float
    dispatch_every: float
    keep: float
    purge_every: float
    #: ``delivery_lease``: how soon alerts a killed worker was sending go again (None: default).
    lease: float | None = None


def config(
    folder: Path,
    *,
    database_url: str,
    smtp: int,
    bot: int,
    source: int,
    timing: Timing,
    workers: int = 1,
) -> Path:
    """Write the workers' ``config.toml``: the database, the channels, one source per doc type.

    Telegram's limit of 30 messages a second is the bot's, and each process
    counts its own sends: ``workers`` processes get a share each, as the README
    tells operators to set it.
    """
    sources = "".join(
        f'\n[sources.bk-{doc_type}]\nkind = "budgetkey"\nbase_url = "{source_url(source)}"\n'
        f'doc_type = "{doc_type}"\nevery = {timing.poll_every:g}\n'
        for doc_type in soak_plan.DOC_TYPES
    )
    text = f"""[agent]
database_url = "{database_url.replace("postgresql://", "postgresql+psycopg://")}"
public_url = "http://127.0.0.1:8080"
dispatch_every = {timing.dispatch_every:g}
retry_first = 5
keep_deliveries = {timing.keep:g}
keep_events = {timing.keep:g}
purge_every = {timing.purge_every:g}
{"" if timing.lease is None else f"delivery_lease = {timing.lease:g}"}

[notifiers.email]
host = "127.0.0.1"
port = {smtp}
from_address = "Smart Agent <alerts@example.org>"

[notifiers.telegram]
base_url = "http://127.0.0.1:{bot}/bot"
messages_per_second = {TELEGRAM_PER_SECOND / workers:g}
{sources}"""
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def source_url(port: int) -> str:
    """The base URL of the replaying source (items link to ``<it>/i/<key>``)."""
    return f"http://127.0.0.1:{port}"


def environment(port: int) -> dict[str, str]:
    """A worker's environment: the secrets, and its own HTTP port (``serve`` has one)."""
    return {
        **os.environ,
        "SMART_AGENT_NOTIFIERS__TELEGRAM__TOKEN": TOKEN,
        "SMART_AGENT_AGENT__SIGNING_KEY": SIGNING_KEY,
        "SMART_AGENT_SERVER__PORT": str(port),
    }


def smart_agent(config_path: Path, *args: str) -> None:
    """Run a ``smart-agent`` command to its end; raise with its output if it fails."""
    result = subprocess.run(
        [sys.executable, "-m", "agent", "--config", str(config_path), *args],
        cwd=config_path.parent,
        env=environment(free_port()),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"smart-agent {' '.join(args)} failed:\n{result.stderr}")


def subscribe(database_url: str, count: int, *, seed: int, now: datetime) -> None:
    """Store ``count`` active, immediate subscriptions: the narrow rule mix, the channel mix."""
    workload = Workload(load_corpus(ROOT / "tests" / "data" / "budgetkey"), seed)
    queries = [draft.query() for draft in workload.drafts(count)]
    rng = random.Random(seed)
    sets, weights = zip(*CHANNEL_MIX, strict=True)
    rows = [
        _row(index, query, json.loads(tree), rng.choices(sets, weights)[0], now)
        for index, (query, tree) in enumerate(zip(queries, engines.persist(queries), strict=True))
    ]
    engine = database.connect(database_url.replace("postgresql://", "postgresql+psycopg://"))
    table = Subscription.__table__  # type: ignore[attr-defined]
    with Session(engine) as session:
        for start in range(0, len(rows), _INSERT_CHUNK):
            session.execute(sa.insert(table), rows[start : start + _INSERT_CHUNK])
        session.commit()
    engine.dispose()


def address(channel: str, index: int) -> str:
    """Subscriber ``index``'s address on ``channel``."""
    return f"reader{index}@example.org" if channel == "email" else str(100_000_000 + index)


def _row(
    index: int, query: str, tree: dict[str, Any], channels: Sequence[str], now: datetime
) -> dict[str, Any]:
    return {
        "name": f"soak {index}",
        "rule": {"query": query},
        "compiled": tree,
        "channels": list(channels),
        "addresses": {name: address(name, index) for name in channels if name != "rss"},
        "language": "he",
        "cadence": "immediate",
        "cadences": {},
        "quiet_hours": None,
        "feed_token": secrets.token_urlsafe(24),
        "active": True,
        "created_at": now,
        "updated_at": now,
    }
