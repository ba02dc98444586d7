"""``smart-agent subscriptions ...``: add, list, remove and import subscriptions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click
from pydantic import ValidationError

import notifiers
from agent import subscription_files, subscriptions
from agent.cli import all_subscriptions, cli, config_of, echo_json, run, session_of
from agent.cli_rules import rule_options
from agent.config import Config, format_errors
from agent.errors import AgentError
from agent.keys import links_for
from agent.links import Links
from agent.rules import describe
from agent.service import utcnow

#: The option each addressed channel needs: channel → (parameter, option), from the registry.
_ADDRESS_OPTIONS = {
    name: (cls.address_field, f"--{cls.address_option}")
    for name, cls in notifiers.CHANNELS.items()
    if cls.address_field and cls.address_option
}


def address_options(command: Callable[..., None]) -> Callable[..., None]:
    """Add ``--<option> ADDRESS`` for every addressed channel (``--email``, ``--telegram``)."""
    for name, (field, option) in reversed(_ADDRESS_OPTIONS.items()):
        command = click.option(option, field, help=f"Address for the {name} channel.")(command)
    return command


@cli.group("subscriptions")
def subscriptions_group() -> None:
    """Manage subscriptions."""


@subscriptions_group.command("add")
@click.argument("name")
@click.option("-q", "--query", default="", help="The rule as a query string.")
@rule_options
@click.option(
    "--channel",
    "channels",
    multiple=True,
    required=True,
    type=click.Choice(subscriptions.CHANNELS),
    help="Where alerts go (repeatable; at least one).",
)
@address_options
@click.option(
    "--language", type=click.Choice(subscriptions.LANGUAGES), default="he", show_default=True
)
@click.option(
    "--cadence", type=click.Choice(subscriptions.CADENCES), default="immediate", show_default=True
)
@click.option(
    "--channel-cadence",
    "cadences",
    multiple=True,
    metavar="CHANNEL=CADENCE",
    help="A different cadence on one channel (telegram=immediate); repeatable.",
)
@click.option("--timezone", help="The subscriber's time zone (default: the service's).")
@click.option("--digest-hour", type=click.IntRange(0, 23), help="Local hour of digests.")
@click.option("--quiet-hours", help="Local hours when immediate alerts wait: 22-07.")
@click.option("--replace", is_flag=True, help="Overwrite the subscription NAME if it exists.")
@click.pass_context
def add(
    ctx: click.Context,
    /,
    name: str,
    channels: tuple[str, ...],
    replace: bool,
    **options: object,
) -> None:
    """Add the subscription NAME (or, with --replace, overwrite it)."""
    for channel, (option, flag) in _ADDRESS_OPTIONS.items():
        if channel in channels and not options[option]:
            raise click.UsageError(f"the {channel} channel needs {flag}")
    pairs = options.pop("cadences")
    given = {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}
    given["cadences"] = dict(_pair(text) for text in pairs) if isinstance(pairs, tuple) else {}
    try:
        entry = subscriptions.SubscriptionInput.model_validate(
            {
                "name": name,
                "channels": list(channels),
                **{k: v for k, v in given.items() if v not in (None, [], {})},
            }
        )
    except ValidationError as exc:
        raise AgentError(f"subscription {name!r}:\n{format_errors(exc)}") from exc
    entry.rule.compile()
    config = config_of(ctx)
    subscriptions.check_channels(entry, config.notifiers.enabled())
    with session_of(config) as session:
        existing = subscriptions.by_name(session, name)
        if existing is not None and not replace:
            raise AgentError(
                f"subscription {name!r} already exists (id {existing.id}); "
                "give --replace to overwrite it"
            )
        sub = subscriptions.save(session, entry, now=utcnow())
        session.commit()
        links = _links(config)
        feeds = (links.feed_url(sub), links.rss_url(sub), links.calendar_url(sub))
    done = "replaced" if existing is not None else "saved"
    click.echo(f"subscription {sub.id} {sub.name!r} {done}; rule: {describe(entry.rule.compile())}")
    click.echo("feed: {}\nrss: {}\ncalendar: {}".format(*feeds))


def _pair(text: object) -> tuple[str, str]:
    name, sep, value = str(text).partition("=")
    if not sep:
        raise click.BadParameter(f"{text!r}: write CHANNEL=CADENCE, e.g. telegram=immediate")
    return name.strip(), value.strip()


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
        echo_json(
            [
                subscriptions.describe(s, feed_url=links.feed_url(s))
                | {"rss_url": links.rss_url(s), "calendar_url": links.calendar_url(s)}
                for s in subs
            ]
        )
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
    """Import subscriptions from a TOML or JSON FILE (all or nothing; same names are updated)."""
    config = config_of(ctx)
    entries = subscription_files.read_file(file, available=config.notifiers.enabled())
    with session_of(config) as session:
        updated = sum(subscriptions.by_name(session, e.name) is not None for e in entries)
        for entry in entries:
            subscriptions.save(session, entry, now=utcnow())
        session.commit()
    click.echo(
        f"imported {len(entries)} subscriptions from {file} "
        f"({len(entries) - updated} new, {updated} updated)"
    )


@subscriptions_group.command("telegram-link")
@click.argument("ref")
@click.pass_context
@run
async def telegram_link(ctx: click.Context, ref: str) -> None:
    """Print the Telegram links that connect a chat, a group or a channel to REF."""
    config = config_of(ctx)
    bot = config.notifiers.telegram
    if bot is None:
        raise AgentError(f"the telegram channel is not configured; to use it, {bot_setup()}")
    with session_of(config) as session:
        sub = subscriptions.find(session, ref)
        if sub is None:
            raise AgentError(f"no subscription {ref!r}")
        token = _links(config).telegram_start(sub)
    async with bot:  # getMe: the links name the bot
        name = bot.username
    click.echo(f"private chat: https://t.me/{name}?start={token}")
    click.echo(f"group:        https://t.me/{name}?startgroup={token}")
    click.echo(f"channel:      add @{name} as an administrator, then post /start {token}")


def bot_setup() -> str:
    """How to turn the Telegram channel on."""
    return notifiers.channel("telegram").how_to_enable


def _links(config: Config) -> Links:
    return links_for(config, clock=utcnow)
