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
from agent import keys
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


#: Where the ``--config`` path is kept, in the context's ``meta`` shared by every command.
CONFIG_KEY = "smart_agent.config"


def _remember_config(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    # The innermost --config given wins: `smart-agent --config a run-once --config b` uses b.
    if value is not None:
        ctx.meta[CONFIG_KEY] = value


def _config_option(default: Path | None) -> click.Option:
    return click.Option(
        ["--config", "config_path"],
        type=click.Path(path_type=Path, dir_okay=False),
        default=default,
        expose_value=False,
        is_eager=True,
        callback=_remember_config,
        help="The configuration file (default ./config.toml).",
    )


class AgentCommand(click.Command):
    """A command that also accepts ``--config`` after its name."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.append(_config_option(None))


class AgentGroup(click.Group):
    """A group whose commands and subgroups, at any depth, accept ``--config`` too."""

    command_class = AgentCommand
    group_class = type

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.append(_config_option(None))


class RootGroup(click.Group):
    """The ``smart-agent`` group: ``--config`` here has the default."""

    command_class = AgentCommand
    group_class = AgentGroup

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.insert(0, _config_option(Path("config.toml")))


@click.group(cls=RootGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log debug details.")
def cli(verbose: bool) -> None:
    """Smart Agent: alerts on new government tenders, calls, support criteria and budget changes.

    --config may be given before or after the command's name.
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "httpcore", "apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def config_of(ctx: click.Context) -> Config:
    """Load the configuration named by ``--config`` (exits 2 if invalid)."""
    path: Path = ctx.meta[CONFIG_KEY]
    return load_config(path)


def session_of(config: Config) -> Session:
    """Open the database (creating tables if needed) and return a session."""
    engine = database.connect(config.database_url)
    database.init(engine)
    return Session(engine, expire_on_commit=False)


@cli.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create or upgrade the database, and a signing key for links if none is set."""
    config = config_of(ctx)
    database.init(database.connect(config.database_url))
    click.echo(f"database ready: {config.database_url}")
    if (created := keys.create_key_file(config)) is not None:
        click.echo(f"signing key created: {created}")


#: For commands that send links: start without a secret signing key.
_local_trial = click.option(
    "--local-trial",
    is_flag=True,
    help="Start without a secret signing key (links can be forged): for a trial on your machine.",
)


@cli.command("run-once")
@_local_trial
@click.pass_context
@run
async def run_once(ctx: click.Context, local_trial: bool) -> None:
    """Poll every enabled source, match, send what is due, and exit.

    Exits with status 1 if any source failed or any delivery failed (after
    polling the others and sending the rest), so cron reports it; a rate limit
    is not a failure.
    """
    config = config_of(ctx)
    keys.require_key(config, local_trial=local_trial)
    async with Agent.open(config) as agent:
        results = await agent.poll_all()
        for result in results:
            if result.disabled:
                click.echo(f"{result.source}: disabled by an admin in the console (not polled)")
                continue
            state = "ok" if result.ok else f"FAILED: {result.error}"
            note = " (baseline, no alerts)" if result.baseline else ""
            click.echo(
                f"{result.source}: {state}; {result.items} items, "
                f"{result.events} events, {result.deliveries} alerts queued{note}"
            )
        sent = await agent.dispatch()
        click.echo(f"delivered: {sent.sent} sent, {sent.retrying} to retry, {sent.dead} dead")
    failed = [f"source {r.source} failed: {r.error}" for r in results if not r.ok]
    failed += [f"delivery failed: {error}" for error in dict.fromkeys(sent.errors)]
    for line in failed:
        click.echo(f"error: {line}", err=True)
    if failed:
        raise SystemExit(1)


@cli.command()
@_local_trial
@click.pass_context
def serve(ctx: click.Context, local_trial: bool) -> None:
    """Serve the web app and poll and send, until stopped.

    Any number may run over one PostgreSQL database, beside any number of
    workers. Refuses to start (exit 2) without a secret signing key for links.
    """
    from agent.worker import serve_forever

    asyncio.run(serve_forever(config_of(ctx), local_trial=local_trial))


@cli.command()
@_local_trial
@click.pass_context
def worker(ctx: click.Context, local_trial: bool) -> None:
    """Poll the sources and send the alerts, without the web app, until stopped.

    Run as many as you like, on one machine or several, over one PostgreSQL
    database: each source is polled by one worker per interval and each alert
    is sent once. Refuses to start (exit 2) without a secret signing key.
    """
    from agent.worker import work_forever

    asyncio.run(work_forever(config_of(ctx), local_trial=local_trial))


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
    from agent import (  # noqa: F401  (registers the commands)
        cli_admin,
        cli_deliveries,
        cli_orgs,
        cli_rules,
        cli_sources,
        cli_subscriptions,
        cli_templates,
    )

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
