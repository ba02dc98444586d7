"""The admin's endpoints for the outbox and the sources: deliveries, why, retry, replay, poll."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.sql.expression import Select
from starlette.requests import Request
from starlette.responses import Response

from agent import outbox
from agent.models import Delivery, SourceState, StoredEvent, Subscription
from agent.rules.explain import explain
from agent.web.api_core import ApiError, answer, page_info, read_query
from agent.web.api_endpoint import Access, Endpoint, Handler
from agent.web.api_schemas import (
    DeliveryDetail,
    DeliveryList,
    DeliveryOut,
    DeliveryQuery,
    PollStarted,
)
from agent.web.site import Site


def endpoints(site: Site) -> list[Endpoint]:
    """The admin's delivery and source endpoints."""

    async def list_all(request: Request) -> Response:
        query = read_query(request, DeliveryQuery)
        chosen = _joined()
        if query.status is not None:
            chosen = chosen.where(col(Delivery.status) == query.status)
        if query.channel is not None:
            chosen = chosen.where(col(Delivery.channel) == query.channel)
        if query.subscription is not None:
            chosen = chosen.where(col(Delivery.subscription_id) == query.subscription)
        with site.session() as session:
            total = session.exec(select(func.count()).select_from(chosen.subquery())).one()
            rows = session.exec(
                chosen.order_by(col(Delivery.id).desc())
                .offset((query.page - 1) * query.per_page)
                .limit(query.per_page)
            ).all()
        info = page_info(request, query, total=total, more=query.page * query.per_page < total)
        found = [_out(d, s, e) for d, s, e in rows]
        return answer(DeliveryList(deliveries=found, page=info))

    async def one(request: Request) -> Response:
        delivery, sub, event = _load(site, request.path_params["id"])
        catalogue = site.pages.messages.get(sub.language) or site.pages.messages["he"]
        return answer(
            DeliveryDetail(
                **_out(delivery, sub, event).model_dump(),
                reasons=delivery.reasons,
                explained=list(explain(delivery.reasons, catalogue, sub.language)),
            )
        )

    def acting(action: Callable[..., int], refusal: str) -> Handler:
        async def act(request: Request) -> Response:
            delivery_id: int = request.path_params["id"]
            _load(site, delivery_id)
            with site.session() as session:
                changed = action(session, [delivery_id], now=site.now())
                session.commit()
            if not changed:
                raise ApiError(409, refusal)
            return answer(_out(*_load(site, delivery_id)))

        return act

    async def poll(request: Request) -> Response:
        name: str = request.path_params["name"]
        source = site.agent.config.sources.get(name)
        if source is None:
            raise ApiError(404, f"no source {name!r}")
        with site.session() as session:
            state = session.get(SourceState, name)
        if not source.enabled or (state is not None and state.disabled_at is not None):
            raise ApiError(409, f"the source {name!r} is turned off")
        site.spawn(site.agent.poll(name), name=f"poll {name}")
        message = "polling; the result shows in /api/v1/sources"
        return answer(PollStarted(source=name, message=message), 202)

    retry = acting(outbox.retry_now, "only a delivery waiting for a retry can be retried now")
    replay = acting(outbox.replay, "only a sent, dead or suppressed delivery can be replayed")
    tag, admin, about = "admin", Access.ADMIN, {"id": "The delivery's id."}
    one_path = "/admin/deliveries/{id:int}"
    return [
        Endpoint(
            "GET",
            "/admin/deliveries",
            "listDeliveries",
            "The delivery ledger, newest first",
            tag,
            list_all,
            access=admin,
            query=(DeliveryQuery,),
            returns=DeliveryList,
        ),
        Endpoint(
            "GET",
            one_path,
            "getDelivery",
            "One delivery, with the reasons its rule matched",
            tag,
            one,
            access=admin,
            returns=DeliveryDetail,
            about=about,
        ),
        Endpoint(
            "POST",
            one_path + "/retry",
            "retryDelivery",
            "Send a delivery waiting for a retry now",
            tag,
            retry,
            access=admin,
            returns=DeliveryOut,
            errors=(409,),
            about=about,
            description="409: it is not waiting for a retry.",
        ),
        Endpoint(
            "POST",
            one_path + "/replay",
            "replayDelivery",
            "Send a sent, dead or suppressed delivery again",
            tag,
            replay,
            access=admin,
            returns=DeliveryOut,
            errors=(409,),
            about=about,
            description="409: it is still queued or being sent.",
        ),
        Endpoint(
            "POST",
            "/admin/sources/{name}/poll",
            "pollSource",
            "Poll a source now",
            tag,
            poll,
            access=admin,
            status=202,
            returns=PollStarted,
            errors=(409,),
            about={"name": "The source's name in the configuration."},
            description="409: the source is turned off.",
        ),
    ]


def _joined() -> Select[Delivery, Subscription, StoredEvent]:
    """Deliveries with their subscription and event."""
    return (
        select(Delivery, Subscription, StoredEvent)
        .join(Subscription, col(Subscription.id) == Delivery.subscription_id)
        .join(StoredEvent, col(StoredEvent.id) == Delivery.event_id)
    )


def _load(site: Site, delivery_id: int) -> tuple[Delivery, Subscription, StoredEvent]:
    """A delivery with its subscription and event; 404 if there is none."""
    with site.session() as session:
        found = session.exec(_joined().where(col(Delivery.id) == delivery_id)).first()
    if found is None:
        raise ApiError(404, "no such delivery")
    return found


def _out(delivery: Delivery, sub: Subscription, event: StoredEvent) -> DeliveryOut:
    """A delivery as the API shows it."""
    return DeliveryOut.model_validate(
        {
            **delivery.model_dump(exclude={"lease_owner", "message_token", "reasons"}),
            "id": delivery.id,
            "subscription": sub.name,
            "rolled_over": bool(delivery.rolled_over),
            "event_type": event.type,
            "item_id": event.item_id,
            "item_title": str(event.snapshot.get("title", "")),
        }
    )
