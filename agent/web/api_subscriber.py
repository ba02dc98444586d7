"""A subscriber's endpoints: subscribe without an account, then see, change or delete it.

``POST /api/v1/subscriptions`` is the subscribe page's ``sign_up`` with the
same checks: an address that must confirm gets a confirmation message, a
chat connects itself through the deep links in the answer, a feed works at
once. No cookie is read or set, so no CSRF token is asked for. The rest take
the subscription's signed manage token (``agent.web.api_auth``).
"""

from __future__ import annotations

import math

from starlette.requests import Request
from starlette.responses import Response

from agent.errors import AgentError
from agent.rules import describe
from agent.subscriptions import MAX_NAME_LENGTH, SubscriptionInput
from agent.web import api_subscriptions
from agent.web.api_core import ApiError, answer, compile_rule, read_body
from agent.web.api_endpoint import Access, Endpoint, subscription_of
from agent.web.api_schemas import FieldError
from agent.web.api_schemas_subs import (
    NewSubscription,
    SignUpOut,
    SubscriptionOut,
    SubscriptionPatch,
)
from agent.web.security import client_of
from agent.web.signup import ConfirmationNotSent, TooManySignUps, sign_up
from agent.web.site import Site

#: What the audit log calls a subscriber acting through their token.
SUBSCRIBER = "subscriber"


def endpoints(site: Site) -> list[Endpoint]:
    """The subscriber's endpoints."""

    async def create(request: Request) -> Response:
        new = await read_body(request, NewSubscription)
        node = compile_rule(new.rule, prefix="rule.")
        name = new.name or describe(node)[:MAX_NAME_LENGTH]
        given = SubscriptionInput.model_validate(
            {**new.model_dump(exclude={"connect"}), "name": name}
        )
        try:
            made = await sign_up(site, given, connect=new.connect, client=client_of(request))
        except TooManySignUps as exc:
            retry = {"Retry-After": str(math.ceil(exc.wait.total_seconds()))}
            raise ApiError(429, str(exc), headers=retry) from None
        except ConfirmationNotSent as exc:
            raise ApiError(503, str(exc)) from None
        except AgentError as exc:
            field = "connect" if any(f"the {c} " in str(exc) for c in new.connect) else "channels"
            raise ApiError(422, str(exc), [FieldError(field=field, message=str(exc))]) from None
        out = api_subscriptions.subscription_out(site, made.subscription)
        body = SignUpOut(next_step=made.next_step, subscription=out, links=made.links)
        return answer(body, 202)

    async def mine(request: Request) -> Response:
        return answer(api_subscriptions.subscription_out(site, subscription_of(request)))

    async def change(request: Request) -> Response:
        patch = await read_body(request, SubscriptionPatch)
        sub_id = subscription_of(request).id or 0
        sub = api_subscriptions.edit(site, sub_id, patch, actor=SUBSCRIBER)
        return answer(api_subscriptions.subscription_out(site, sub))

    async def delete(request: Request) -> Response:
        api_subscriptions.remove(site, subscription_of(request).id or 0, actor=SUBSCRIBER)
        return Response(status_code=204)

    tag, mine_access = "subscriber", Access.SUBSCRIBER
    return [
        Endpoint(
            "POST",
            "/subscriptions",
            "createSubscription",
            "Subscribe: make a subscription (no account needed)",
            tag,
            create,
            body=NewSubscription,
            status=202,
            returns=SignUpOut,
            errors=(429, 503),
            description=(
                "The same checks as the subscribe page. `next_step` says what follows: "
                "`confirm` (a message went to the address), `connect` (open a deep link), "
                "`ready` (a feed). The `manage` link's last part is the token for the "
                "endpoints below. 429: too many subscriptions from this client lately; "
                "`Retry-After` says in how many seconds to try again. "
                "503: the confirmation could not be sent; try again later."
            ),
        ),
        Endpoint(
            "GET",
            "/subscription",
            "getMySubscription",
            "Your subscription",
            tag,
            mine,
            access=mine_access,
            returns=SubscriptionOut,
        ),
        Endpoint(
            "PATCH",
            "/subscription",
            "updateMySubscription",
            "Change your subscription's rule, name, cadence or language; pause or resume it",
            tag,
            change,
            access=mine_access,
            body=SubscriptionPatch,
            returns=SubscriptionOut,
            errors=(409,),
            description="409: the name is taken, or resuming before the address confirmed.",
        ),
        Endpoint(
            "DELETE",
            "/subscription",
            "deleteMySubscription",
            "Delete your subscription and its alerts",
            tag,
            delete,
            access=mine_access,
            status=204,
        ),
    ]
