"""``smart-agent deliveries ...``: look into the outbox, explain and replay alerts."""

from __future__ import annotations

import click
from sqlmodel import Session, col, select

from agent import outbox
from agent.cli import cli, config_of, echo_json, session_of
from agent.errors import AgentError
from agent.models import Delivery, StoredEvent, Subscription
from agent.service import utcnow


@cli.group("deliveries")
def deliveries_group() -> None:
    """Inspect and replay deliveries (the outbox)."""


@deliveries_group.command("list")
@click.option("--status", type=click.Choice(["pending", "sending", "sent", "dead"]))
@click.option("--limit", default=50, show_default=True)
@click.pass_context
def list_(ctx: click.Context, status: str | None, limit: int) -> None:
    """List the newest deliveries."""
    with session_of(config_of(ctx)) as session:
        query = select(Delivery, Subscription.name).join(
            Subscription, col(Subscription.id) == Delivery.subscription_id
        )
        if status:
            query = query.where(Delivery.status == status)
        query = query.order_by(col(Delivery.id).desc()).limit(limit)
        for delivery, name in session.exec(query):
            error = f"  ({delivery.last_error})" if delivery.last_error else ""
            click.echo(
                f"{delivery.id:>6}  {delivery.status:<8} {delivery.channel:<9} {name}  "
                f"attempts={delivery.attempts}{error}"
            )


@deliveries_group.command("why")
@click.argument("delivery_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def why(ctx: click.Context, delivery_id: int, as_json: bool) -> None:
    """Explain why delivery DELIVERY_ID was sent: the clauses and terms that matched."""
    with session_of(config_of(ctx)) as session:
        delivery = session.get(Delivery, delivery_id)
        if delivery is None:
            raise AgentError(f"no delivery {delivery_id}")
        sub = session.get(Subscription, delivery.subscription_id)
        stored = session.get(StoredEvent, delivery.event_id)
    assert sub is not None
    assert stored is not None
    event = stored.to_event()
    if as_json:
        echo_json(
            {
                "delivery": delivery_id,
                "subscription": sub.name,
                "event": event.type,
                "item": event.item.title,
                "reasons": delivery.reasons,
            }
        )
        return
    click.echo(
        f"delivery {delivery_id} ({delivery.channel}, {delivery.status}) "
        f"for subscription {sub.name!r}"
    )
    click.echo(f"event: {event.type} on {event.item.source}:{event.item.key}")
    click.echo(f"item: {event.item.title}")
    click.echo("matched because:")
    for reason in delivery.reasons:
        click.echo("  - " + format_reason(reason))


def format_reason(reason: dict[str, object]) -> str:
    """One reason as a line: ``term 'מחשוב' in title (as 'למחשוב')``."""
    clause = reason.get("clause", "?")
    parts = [str(clause)]
    if reason.get("term"):
        parts.append(repr(reason["term"]))
    if reason.get("field"):
        parts.append(f"in {reason['field']}")
    if reason.get("matched") and reason.get("matched") != reason.get("term"):
        parts.append(f"(as {reason['matched']!r})")
    if reason.get("value") is not None:
        parts.append(f"= {reason['value']}")
    return " ".join(parts)


@deliveries_group.command("replay")
@click.argument("ids", type=int, nargs=-1)
@click.option("--dead", "all_dead", is_flag=True, help="Replay every dead delivery.")
@click.pass_context
def replay(ctx: click.Context, ids: tuple[int, ...], all_dead: bool) -> None:
    """Queue deliveries IDS (or all dead ones) to be sent again.

    Exits with status 1 if there is nothing to replay or an id is unknown.
    """
    if not ids and not all_dead:
        raise click.UsageError("give the ids of the deliveries to replay, or --dead")
    with session_of(config_of(ctx)) as session:
        chosen = set(ids)
        if unknown := sorted(chosen - _existing(session, chosen)):
            raise AgentError(f"no deliveries with ids {', '.join(map(str, unknown))}")
        if all_dead:
            chosen |= {
                d
                for d in session.exec(select(Delivery.id).where(Delivery.status == "dead"))
                if d is not None
            }
        if not chosen:
            raise AgentError("nothing to replay: there are no dead deliveries")
        count = outbox.replay(session, sorted(chosen), now=utcnow())
        session.commit()
    click.echo(f"queued {count} deliveries again")


def _existing(session: Session, ids: set[int]) -> set[int]:
    found = session.exec(select(Delivery.id).where(col(Delivery.id).in_(ids)))
    return {d for d in found if d is not None}
