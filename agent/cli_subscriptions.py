"""``smart-agent subscriptions ...``: add, list, remove and import subscriptions."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import click
from pydantic import ValidationError

from agent import subscriptions
from agent.cli import all_subscriptions, cli, config_of, echo_json, session_of
from agent.cli_rules import rule_options
from agent.config import Config, format_errors
from agent.errors import AgentError
from agent.links import Links
from agent.rules import describe
from agent.service import utcnow


@cli.group("subscriptions")
def subscriptions_group() -> None:
    """Manage subscriptions."""


@subscriptions_group.command("add")
@click.argument("name")
@click.option("-q", "--query", default="", help="The rule as a query string.")
@rule_options
@click.option("--channel", "channels", multiple=True, help="email, telegram or rss (repeatable).")
@click.option("--email", help="Address for the email channel.")
@click.option("--telegram", "telegram_chat_id", help="Chat id for the telegram channel.")
@click.option("--language", default="he", show_default=True, help="he, ar or en.")
@click.option("--cadence", default="immediate", show_default=True, help="immediate, daily, weekly.")
@click.pass_context
def add(ctx: click.Context, /, name: str, **options: object) -> None:
    """Add (or update) the subscription NAME."""
    given = {k: v for k, v in options.items() if v not in (None, ())}
    given["channels"] = list(cast(tuple[str, ...], options["channels"]) or ("rss",))
    try:
        entry = subscriptions.SubscriptionInput.model_validate({"name": name, **given})
    except ValidationError as exc:
        raise AgentError(f"subscription {name!r}:\n{format_errors(exc)}") from exc
    config = config_of(ctx)
    with session_of(config) as session:
        sub = subscriptions.save(session, entry, now=utcnow())
        session.commit()
        feed = _links(config).feed_url(sub)
    click.echo(f"subscription {sub.id} {sub.name!r} saved; rule: {describe(entry.rule.compile())}")
    click.echo(f"feed: {feed}")


@subscriptions_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, with each feed URL.")
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """List subscriptions."""
    config = config_of(ctx)
    links = _links(config)
    with session_of(config) as session:
        subs = all_subscriptions(session)
    if as_json:
        echo_json([subscriptions.describe(s, feed_url=links.feed_url(s)) for s in subs])
        return
    for sub in subs:
        state = "" if sub.active else " (inactive)"
        click.echo(
            f"{sub.id:>4}  {sub.name}{state}  [{', '.join(sub.channels)}; {sub.cadence}; "
            f"{sub.language}]  {sub.rule}"
        )


@subscriptions_group.command("remove")
@click.argument("ref")
@click.pass_context
def remove(ctx: click.Context, ref: str) -> None:
    """Remove the subscription REF (an id or a name) and its queued alerts."""
    with session_of(config_of(ctx)) as session:
        sub = subscriptions.find(session, ref)
        if sub is None:
            raise AgentError(f"no subscription {ref!r}")
        subscriptions.delete(session, sub)
        session.commit()
    click.echo(f"removed subscription {ref!r}")


@subscriptions_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def import_(ctx: click.Context, file: Path) -> None:
    """Import subscriptions from a TOML or JSON FILE (all or nothing)."""
    entries = subscriptions.read_file(file)
    with session_of(config_of(ctx)) as session:
        for entry in entries:
            subscriptions.save(session, entry, now=utcnow())
        session.commit()
    click.echo(f"imported {len(entries)} subscriptions from {file}")


def _links(config: Config) -> Links:
    return Links(config.agent.public_url, config.agent.signing_key.get_secret_value())
