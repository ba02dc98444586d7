"""The admin's endpoints for subscriptions: list, see, change and delete any of them."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import Response

from agent.models import Subscription
from agent.web import api_subscriptions
from agent.web.api_core import ApiError, answer, page_info, read_body, read_query
from agent.web.api_endpoint import Access, Endpoint, actor_of
from agent.web.api_schemas_subs import (
    AdminSubscriptionList,
    AdminSubscriptionOut,
    AdminSubscriptionQuery,
    SubscriptionPatch,
)
from agent.web.site import Site

_ID = {"id": "The subscription's id."}


def endpoints(site: Site) -> list[Endpoint]:
    """The admin's subscription endpoints."""

    async def list_all(request: Request) -> Response:
        query = read_query(request, AdminSubscriptionQuery)
        chosen = select(Subscription)
        if query.active is not None:
            chosen = chosen.where(col(Subscription.active) == query.active)
        with site.session() as session:
            total = session.exec(select(func.count()).select_from(chosen.subquery())).one()
            rows = session.exec(
                chosen.order_by(col(Subscription.id).desc())
                .offset((query.page - 1) * query.per_page)
                .limit(query.per_page)
            ).all()
        info = page_info(request, query, total=total, more=query.page * query.per_page < total)
        found = [api_subscriptions.admin_out(site, sub) for sub in rows]
        return answer(AdminSubscriptionList(subscriptions=found, page=info))

    async def one(request: Request) -> Response:
        with site.session() as session:
            sub = session.get(Subscription, request.path_params["id"])
        if sub is None:
            raise ApiError(404, "no such subscription")
        return answer(api_subscriptions.admin_out(site, sub))

    async def change(request: Request) -> Response:
        patch = await read_body(request, SubscriptionPatch)
        sub_id: int = request.path_params["id"]
        sub = api_subscriptions.edit(site, sub_id, patch, actor=actor_of(request))
        return answer(api_subscriptions.admin_out(site, sub))

    async def delete(request: Request) -> Response:
        api_subscriptions.remove(site, request.path_params["id"], actor=actor_of(request))
        return Response(status_code=204)

    tag, admin = "admin", Access.ADMIN
    one_path = "/admin/subscriptions/{id:int}"
    return [
        Endpoint(
            "GET",
            "/admin/subscriptions",
            "listSubscriptions",
            "Every subscription, newest first",
            tag,
            list_all,
            access=admin,
            query=(AdminSubscriptionQuery,),
            returns=AdminSubscriptionList,
        ),
        Endpoint(
            "GET",
            one_path,
            "getSubscription",
            "One subscription",
            tag,
            one,
            access=admin,
            returns=AdminSubscriptionOut,
            about=_ID,
        ),
        Endpoint(
            "PATCH",
            one_path,
            "updateSubscription",
            "Change a subscription's rule, name, cadence or language; pause or resume it",
            tag,
            change,
            access=admin,
            body=SubscriptionPatch,
            returns=AdminSubscriptionOut,
            errors=(409,),
            about=_ID,
            description="409: the name is taken, or resuming before the address confirmed.",
        ),
        Endpoint(
            "DELETE",
            one_path,
            "deleteSubscription",
            "Delete a subscription and its deliveries",
            tag,
            delete,
            access=admin,
            status=204,
            about=_ID,
        ),
    ]
