"""``smart-agent rules ...``: try a rule, or an edit, against the stored history."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from agent import backtest, subscriptions
from agent.cli import cli, config_of, session_of
from agent.config import format_errors
from agent.errors import AgentError
from agent.rules import Node, RuleSpec, describe
from agent.service import utcnow

F = TypeVar("F", bound=Callable[..., Any])

_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def rule_options(command: F) -> F:
    """Add the structured rule options shared by ``rules test`` and ``subscriptions add``."""
    options = [
        click.option("--kind", "kinds", multiple=True, help="Only these kinds (repeatable)."),
        click.option("--publisher", "publishers", multiple=True, help="Only these publishers."),
        click.option("--amount-min", type=float, help="Smallest amount, in ₪."),
        click.option("--amount-max", type=float, help="Largest amount, in ₪."),
        click.option("--event", "event_types", multiple=True, help="Only these event types."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def rule_from(query: str, options: dict[str, Any]) -> RuleSpec:
    """Build a ``RuleSpec`` from a query and the structured options given."""
    fields = {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}
    fields = {k: v for k, v in fields.items() if v not in (None, [])}
    try:
        return RuleSpec.model_validate({"query": query, **fields})
    except ValidationError as exc:
        raise AgentError(f"rule:\n{format_errors(exc)}") from exc


def parse_period(text: str) -> timedelta:
    """Parse ``90d``, ``12w`` or ``48h``."""
    match = re.fullmatch(r"(\d+)\s*([hdw])", text.strip())
    if not match:
        raise click.BadParameter(f"{text!r}: use a number and h, d or w, such as 90d")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


@cli.group("rules")
def rules_group() -> None:
    """Try rules against the stored history before saving them."""


@rules_group.command("test")
@click.argument("query", default="")
@rule_options
@click.option("--since", default="90d", show_default=True, help="How far back to look.")
@click.option("--show", default=10, show_default=True, help="How many newest matches to show.")
@click.pass_context
def test(ctx: click.Context, /, query: str, since: str, show: int, **options: Any) -> None:
    """Run QUERY over the stored items: matches per week and the newest matches."""
    node = rule_from(query, options).compile()
    now = utcnow()
    with session_of(config_of(ctx)) as session:
        result = backtest.backtest(session, node, since=now - parse_period(since), until=now)
    click.echo(f"rule: {describe(node)}")
    click.echo(
        f"{len(result.hits)} matches since {result.since:%Y-%m-%d} "
        f"(about {result.per_day():.1f} alerts a day)"
    )
    for week, count in result.per_week():
        click.echo(f"  week of {week}: {count:>4} {'#' * min(count, 60)}")
    _show_hits("newest matches:", result.hits[:show])


@rules_group.command("diff")
@click.argument("subscription")
@click.argument("query")
@rule_options
@click.option("--since", default="30d", show_default=True, help="How far back to look.")
@click.pass_context
def diff(ctx: click.Context, /, subscription: str, query: str, since: str, **options: Any) -> None:
    """Show what changing SUBSCRIPTION's rule to QUERY would add and remove."""
    new: Node = rule_from(query, options).compile()
    now = utcnow()
    with session_of(config_of(ctx)) as session:
        sub = subscriptions.find(session, subscription)
        if sub is None:
            raise AgentError(f"no subscription {subscription!r}")
        old = RuleSpec.model_validate(sub.rule).compile()
        result = backtest.diff(session, old, new, since=now - parse_period(since), until=now)
    click.echo(f"old rule: {describe(old)}")
    click.echo(f"new rule: {describe(new)}")
    click.echo(
        f"+{len(result.added)} / -{len(result.removed)} (unchanged {result.kept}) "
        f"over the last {since}"
    )
    _show_hits("would be added:", result.added)
    _show_hits("would be removed:", result.removed)


def _show_hits(title: str, hits: list[backtest.Hit]) -> None:
    if not hits:
        return
    click.echo(title)
    for hit in hits:
        item = hit.event.item
        click.echo(
            f"  {hit.at:%Y-%m-%d}  {hit.event.type:<16} {item.title}  [{item.source}:{item.key}]"
        )
