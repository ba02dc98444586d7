"""``smart-agent deliveries ...`` and ``suppressions ...``: the ledger of every alert.

Every delivery is listed with its state (``DeliveryStatus``), attempts and last
error; ``show`` and ``why`` explain one; ``retry`` sends failed ones now and
``replay`` sends again what was sent or died, after an outage. ``suppressions``
lists the addresses channels refused for good, and lifts them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import click
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

import notifiers
from agent import ledger, outbox
from agent.cli import cli, config_of, echo_json, session_of
from agent.errors import AgentError
from agent.models import (
    Delivery,
    DeliveryStatus,
    Event,
    Subscription,
    Suppression,
)
from agent.service import utcnow

#: The statuses, for ``--status``.
STATUSES = [status.value for status in DeliveryStatus]
#: One stored reason as a line (shared with the admin console's ledger).
format_reason = ledger.format_reason


def _since(value: str | None) -> datetime | None:
    """Parse ``--since``: ``30m``, ``6h``, ``2d`` ago, or an ISO date or time (UTC)."""
    if value is None:
        return None
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if value[:-1].isdigit() and value[-1:] in units:
        return utcnow() - timedelta(**{units[value[-1]]: int(value[:-1])})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r}: give 30m, 6h, 2d or an ISO date") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=utcnow().tzinfo)


def ledger_filters(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--since``, ``--status`` and ``--channel``, shared by list, retry and replay."""
    command = click.option("--channel", type=click.Choice(list(notifiers.CHANNELS)))(command)
    command = click.option("--status", type=click.Choice(STATUSES))(command)
    return click.option("--since", help="Made since: 30m, 6h, 2d, or an ISO date.")(command)


def _filtered(
    query: SelectOfScalar[Any], since: str | None, status: str | None, channel: str | None
) -> SelectOfScalar[Any]:
    return query.where(
        *ledger.ledger_conditions(since=_since(since), status=status, channel=channel)
    )


@cli.group("deliveries")
def deliveries_group() -> None:
    """Inspect and replay deliveries (the outbox)."""


@deliveries_group.command("list")
@ledger_filters
@click.option("--limit", default=50, show_default=True)
@click.pass_context
def list_(
    ctx: click.Context, since: str | None, status: str | None, channel: str | None, limit: int
) -> None:
    """List the newest deliveries, with their state, attempts and last error."""
    with session_of(config_of(ctx)) as session:
        where = ledger.ledger_conditions(since=_since(since), status=status, channel=channel)
        for found in ledger.ledger(session, where, limit=limit):
            delivery, name = found.delivery, found.subscription.name
            error = f"  ({delivery.last_error})" if delivery.last_error else ""
            click.echo(
                f"{delivery.id:>6}  {delivery.status:<8} {delivery.channel:<9} {name}  "
                f"attempts={delivery.attempts}{error}"
            )


def _load(ctx: click.Context, delivery_id: int) -> tuple[Delivery, Subscription, Event]:
    """A delivery with its subscription and event; ``AgentError`` if there is none."""
    with session_of(config_of(ctx)) as session:
        found = ledger.entry(session, delivery_id)
    if found is None:
        raise AgentError(f"no delivery {delivery_id}")
    return found.delivery, found.subscription, found.event.to_event()


@deliveries_group.command("show")
@click.argument("delivery_id", type=int)
@click.pass_context
def show(ctx: click.Context, delivery_id: int) -> None:
    """Show everything about delivery DELIVERY_ID, as JSON."""
    delivery, sub, event = _load(ctx, delivery_id)
    echo_json(
        {
            **delivery.model_dump(mode="json", exclude={"lease_owner", "message_token"}),
            "subscription": sub.name,
            "event": {"type": event.type, "source": event.item.source, "key": event.item.key},
            "item": event.item.title,
        }
    )


@deliveries_group.command("why")
@click.argument("delivery_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def why(ctx: click.Context, delivery_id: int, as_json: bool) -> None:
    """Explain why delivery DELIVERY_ID was sent: the clauses and terms that matched."""
    delivery, sub, event = _load(ctx, delivery_id)
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


@deliveries_group.command("replay")
@click.argument("ids", type=int, nargs=-1)
@click.option("--dead", "all_dead", is_flag=True, help="Replay every dead delivery.")
@ledger_filters
@click.pass_context
def replay(
    ctx: click.Context,
    ids: tuple[int, ...],
    all_dead: bool,
    since: str | None,
    status: str | None,
    channel: str | None,
) -> None:
    """Queue deliveries IDS (or those the options choose) to be sent again.

    Sent, dead and suppressed deliveries can be replayed; ``--dead`` means
    ``--status dead``. Exits with status 1 if there is nothing to replay or an id
    is unknown.
    """
    status = "dead" if all_dead else status
    if not ids and not (status or since or channel):
        raise click.UsageError("give the ids of the deliveries to replay, --dead, or filters")
    with session_of(config_of(ctx)) as session:
        chosen = _chosen(session, set(ids), since, status, channel)
        if not chosen:
            raise AgentError("nothing to replay: no delivery matches")
        count = outbox.replay(session, sorted(chosen), now=utcnow())
        session.commit()
    if not count:
        raise AgentError("nothing to replay: the chosen deliveries are queued or being sent")
    click.echo(f"queued {count} deliveries again")


@deliveries_group.command("retry")
@click.argument("ids", type=int, nargs=-1)
@ledger_filters
@click.pass_context
def retry(
    ctx: click.Context,
    ids: tuple[int, ...],
    since: str | None,
    status: str | None,
    channel: str | None,
) -> None:
    """Try failed deliveries IDS (or those the options choose) again now, keeping attempts."""
    with session_of(config_of(ctx)) as session:
        chosen = _chosen(session, set(ids), since, status or DeliveryStatus.RETRYING, channel)
        count = outbox.retry_now(session, sorted(chosen), now=utcnow())
        session.commit()
    if not count:
        raise AgentError("nothing to retry: no failed delivery waits for another attempt")
    click.echo(f"{count} deliveries will be tried again at the next dispatch")


def _chosen(
    session: Session, ids: set[int], since: str | None, status: str | None, channel: str | None
) -> set[int]:
    """The ids given (all must exist), or every delivery the filters choose."""
    if unknown := sorted(ids - _existing(session, ids)):
        raise AgentError(f"no deliveries with ids {', '.join(map(str, unknown))}")
    if ids:
        return ids
    query = _filtered(select(Delivery.id), since, status, channel)
    return {d for d in session.exec(query) if d is not None}


@cli.group("suppressions")
def suppressions_group() -> None:
    """Addresses a channel refused for good: nothing is sent to them until lifted."""


@suppressions_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include lifted ones.")
@click.pass_context
def suppressions_list(ctx: click.Context, show_all: bool) -> None:
    """List suppressed addresses, with the channel's reason."""
    with session_of(config_of(ctx)) as session:
        query = select(Suppression).order_by(col(Suppression.created_at).desc())
        if not show_all:
            query = query.where(col(Suppression.lifted_at).is_(None))
        for row in session.exec(query):
            lifted = f"  (lifted {row.lifted_at:%Y-%m-%d %H:%M})" if row.lifted_at else ""
            click.echo(
                f"{row.channel:<9} {row.address}  since {row.created_at:%Y-%m-%d %H:%M}: "
                f"{row.reason}{lifted}"
            )


@suppressions_group.command("lift")
@click.argument("channel", type=click.Choice(list(notifiers.CHANNELS)))
@click.argument("address")
@click.pass_context
def suppressions_lift(ctx: click.Context, channel: str, address: str) -> None:
    """Send to ADDRESS on CHANNEL again (held alerts: ``deliveries replay --status suppressed``)."""
    with session_of(config_of(ctx)) as session:
        if not outbox.lift(session, channel, address, now=utcnow()):
            raise AgentError(f"{address} is not suppressed on {channel}")
        session.commit()
    click.echo(f"lifted: {channel} {address}")


def _existing(session: Session, ids: set[int]) -> set[int]:
    found = session.exec(select(Delivery.id).where(col(Delivery.id).in_(ids)))
    return {d for d in found if d is not None}
