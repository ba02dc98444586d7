"""``smart-agent admin create-org``: an organisation with its first owner, from the shell."""

from __future__ import annotations

import click

from agent import organisations
from agent.cli import config_of, session_of, utcnow
from agent.cli_admin import admin_group


@admin_group.command("create-org")
@click.argument("slug")
@click.argument("name")
@click.option("--owner", required=True, help="The first owner's e-mail: an existing login.")
@click.pass_context
def create_org(ctx: click.Context, slug: str, name: str, owner: str) -> None:
    """Create the organisation NAME at /orgs/SLUG, owned by an existing login."""
    with session_of(config_of(ctx)) as session:
        org = organisations.create_organisation(
            session, name, slug, owner, actor="cli", now=utcnow()
        )
        session.commit()
    click.echo(f"/orgs/{org.slug}: {org.name}, owned by {owner.strip().lower()}")
