"""The ``smart-agent`` command line.

Thin on purpose: each command opens an ``Agent`` (or just the database) and
calls one function. It is the only place that configures logging, and it
turns ``ConfigError`` into exit status 2 and other ``AgentError``s into 1.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click
from sqlmodel import Session, col, select

from agent import db as database
from agent.config import Config, load_config
from agent.errors import AgentError, ConfigError
from agent.models import Subscription
from agent.service import Agent, utcnow

P = ParamSpec("P")
R = TypeVar("R")


def run(coroutine: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, R]:
    """Let a click command be a coroutine."""

    @functools.wraps(coroutine)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        return asyncio.run(coroutine(*args, **kwargs))

    return wrapper


@click.group()
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=Path("config.toml"),
    show_default=True,
    help="The configuration file.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log debug details.")
@click.pass_context
def cli(ctx: click.Context, config_path: Path, verbose: bool) -> None:
    """Smart Agent: alerts on new government tenders, calls, support criteria and budget changes."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "httpcore", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    ctx.obj = config_path


def config_of(ctx: click.Context) -> Config:
    """Load the configuration named by ``--config`` (exits 2 if invalid)."""
    path: Path = ctx.find_root().obj
    return load_config(path)


def session_of(config: Config) -> Session:
    """Open the database (creating tables if needed) and return a session."""
    engine = database.connect(config.database_url)
    database.init(engine)
    return Session(engine, expire_on_commit=False)


@cli.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create or upgrade the database."""
    config = config_of(ctx)
    database.init(database.connect(config.database_url))
    click.echo(f"database ready: {config.database_url}")


@cli.command("run-once")
@click.pass_context
@run
async def run_once(ctx: click.Context) -> None:
    """Poll every enabled source, match, send what is due, and exit."""
    async with Agent.open(config_of(ctx)) as agent:
        for result in await agent.poll_all():
            state = "ok" if result.ok else f"FAILED: {result.error}"
            note = " (baseline, no alerts)" if result.baseline else ""
            click.echo(
                f"{result.source}: {state}; {result.items} items, "
                f"{result.events} events, {result.deliveries} alerts queued{note}"
            )
        sent = await agent.dispatch()
        click.echo(f"delivered: {sent.sent} sent, {sent.retrying} to retry, {sent.dead} dead")


@cli.command()
@click.pass_context
def serve(ctx: click.Context) -> None:
    """Run the scheduler, the dispatcher and the HTTP server until stopped."""
    from agent.scheduler import serve_forever

    asyncio.run(serve_forever(config_of(ctx)))


@cli.group("sources")
def sources_group() -> None:
    """Look at the configured sources."""


@sources_group.command("check")
@click.pass_context
@run
async def sources_check(ctx: click.Context) -> None:
    """Fetch every enabled source and report its health, alerting nobody."""
    async with Agent.open(config_of(ctx), with_channels=False) as agent:
        checks = await agent.check_sources()
    for check in checks:
        click.echo(
            f"{'ok  ' if check.ok else 'FAIL'} {check.name}: {check.items} items; {check.detail}"
        )
    if not all(check.ok for check in checks):
        raise SystemExit(1)


def main() -> None:
    """Entry point of the ``smart-agent`` console script."""
    from agent import cli_deliveries, cli_rules, cli_subscriptions  # noqa: F401  (commands)

    # python-telegram-bot reads this to hand out retry_after as a timedelta
    # instead of warning that the int form is deprecated.
    os.environ.setdefault("PTB_TIMEDELTA", "1")

    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        raise SystemExit(1) from None
    except click.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        raise SystemExit(2) from None
    except AgentError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None


def all_subscriptions(session: Session) -> list[Subscription]:
    """Every subscription, oldest first."""
    return list(session.exec(select(Subscription).order_by(col(Subscription.id))))


def echo_json(data: Any) -> None:
    """Print ``data`` as readable JSON, keeping Hebrew and Arabic as they are."""
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


__all__ = ["cli", "main", "utcnow"]
