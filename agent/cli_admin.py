"""``smart-agent admin``: the first admin, more logins, and API keys."""

from __future__ import annotations

import sys

import click

from agent import accounts
from agent.cli import cli, config_of, session_of, utcnow
from agent.errors import AgentError


@cli.group("admin")
def admin_group() -> None:
    """Logins for the admin console and keys for the JSON API."""


@admin_group.command("create-user")
@click.argument("email")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input (for scripts).",
)
@click.option(
    "--admin/--member",
    default=True,
    help="An admin (the default) or a login for an organisation's member only.",
)
@click.pass_context
def create_user(ctx: click.Context, email: str, password_stdin: bool, admin: bool) -> None:
    """Create a login for EMAIL, or set a new password for an existing one.

    The password is asked for twice, hidden, unless ``--password-stdin`` is given.
    """
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with session_of(config_of(ctx)) as session:
        user = accounts.create_user(session, email, password, now=utcnow(), admin=admin)
        session.commit()
        role = "admin" if user.is_admin else "member"
    click.echo(f"{user.email} can log in at /login ({role})")


@admin_group.command("create-api-key")
@click.argument("name")
@click.pass_context
def create_api_key(ctx: click.Context, name: str) -> None:
    """Make an API key for the admin endpoints of the JSON API; it is shown only once."""
    with session_of(config_of(ctx)) as session:
        key = accounts.create_api_key(session, name, now=utcnow())
        session.commit()
    click.echo(key)
    click.echo("Send it as 'Authorization: Bearer <key>'. It is not shown again.", err=True)


@admin_group.command("api-keys")
@click.pass_context
def list_api_keys(ctx: click.Context) -> None:
    """List the API keys by name, with when each was made and revoked (never the keys)."""
    with session_of(config_of(ctx)) as session:
        for key in accounts.api_keys(session):
            revoked = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "works"
            click.echo(f"{key.name}\tmade {key.created_at:%Y-%m-%d %H:%M}\t{revoked}")


@admin_group.command("revoke-api-key")
@click.argument("name")
@click.pass_context
def revoke_api_key(ctx: click.Context, name: str) -> None:
    """Revoke the API keys called NAME: they stop working at once."""
    with session_of(config_of(ctx)) as session:
        count = accounts.revoke_api_keys(session, name, now=utcnow())
        session.commit()
    if not count:
        raise AgentError(f"no working API key is called {name!r} (see: smart-agent admin api-keys)")
    click.echo(f"revoked {count} key(s) called {name}")
