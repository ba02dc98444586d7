"""``smart-agent sources record``: save one live source's raw answers for the test fakes.

It reads the configuration and the network only: no database is opened or created.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from agent.cli import config_of, sources_group
from agent.recording import Recording, record, write
from agent.service import utcnow


@sources_group.command("record")
@click.argument("name")
@click.argument("folder", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Write into DIR even if it is not empty.")
@click.pass_context
def sources_record(ctx: click.Context, name: str, folder: Path, force: bool) -> None:
    """Poll source NAME once and save every raw response under DIR (exit 1 if the poll fails)."""
    config = config_of(ctx)
    source = config.sources.get(name)
    if source is None:
        known = ", ".join(config.sources) or "none"
        raise click.BadParameter(
            f"no source {name!r} in the configuration; configured: {known}",
            param_hint="NAME",
        )
    if not force and folder.is_dir() and any(folder.iterdir()):
        raise click.UsageError(f"{folder} is not empty; pass --force to write into it anyway")
    recording = asyncio.run(record(name, source, config, clock=utcnow))
    names = write(recording, folder)
    report(recording, names, folder)
    if not recording.ok:
        click.echo(f"error: {recording.error}", err=True)
        raise SystemExit(1)


def report(recording: Recording, names: list[str], folder: Path) -> None:
    """Print what was recorded and how the poll ended."""
    count = len(recording.exchanges)
    click.echo(
        f"recorded {recording.name} ({recording.kind}) into {folder}: "
        f"{count} response{'s' if count != 1 else ''}, {recording.size:,} bytes"
    )
    for exchange, name in zip(recording.exchanges, names, strict=True):
        click.echo(f"  {exchange.status} {exchange.method} {exchange.url} -> {name}")
    if recording.ok:
        click.echo(f"poll ok: {recording.items} items")
    else:
        click.echo("poll FAILED; what was received is saved")
