"""``smart-agent templates preview``: see a real stored item as a subscriber would."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import click
from sqlmodel import Session, col, select

import notifiers
from agent import i18n, preview
from agent.cli import cli, config_of, session_of
from agent.errors import AgentError
from agent.models import Item, StoredItem
from agent.rendering import Renderer


@cli.group("templates")
def templates_group() -> None:
    """Try the message templates (yours in ``templates_dir`` first)."""


@templates_group.command("preview")
@click.argument("channel", type=click.Choice(list(notifiers.CHANNELS)))
@click.argument("language", type=click.Choice(list(i18n.LANGUAGES)))
@click.option("--item", "key", help="A stored item's key (SOURCE:KEY or KEY); default the newest.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("var/preview"),
    show_default=True,
    help="Where to write the files.",
)
@click.pass_context
def preview_command(
    ctx: click.Context, channel: str, language: str, key: str | None, out: Path
) -> None:
    """Write what a new alert about a stored item looks like on CHANNEL in LANGUAGE."""
    config = config_of(ctx)
    renderer = Renderer(
        config.path(config.agent.templates_dir),
        site_name=config.agent.site_name,
        mail_domain=urlsplit(config.agent.public_url).hostname or "smart-agent.invalid",
        timezone=config.agent.timezone,
    )
    with session_of(config) as session:
        item = _item(session, key)
    folder = config.path(out)
    outgoing = preview.preview(renderer, channel, language, item)
    for path in preview.write(outgoing, folder, f"{channel}-{language}"):
        click.echo(path)


def _item(session: Session, key: str | None) -> Item:
    """The stored item named ``key`` (``SOURCE:KEY`` or ``KEY``), else the newest, else a sample."""
    query = select(StoredItem).order_by(col(StoredItem.changed_at).desc())
    if key is not None:
        source, sep, bare = key.partition(":")
        if sep and bare:
            query = query.where(StoredItem.key == bare, StoredItem.source == source)
        else:
            query = query.where(StoredItem.key == key)
        row = session.exec(query).first()
        if row is None:
            raise AgentError(f"no stored item {key!r}")
        return row.to_item()
    row = session.exec(query).first()
    return row.to_item() if row is not None else preview.SAMPLE
