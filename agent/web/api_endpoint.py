"""One declaration per endpoint: its route, who may call it, and what OpenAPI says of it.

Each area of the API lists ``Endpoint``s; ``agent.web.api`` makes their
routes and ``agent.web.openapi`` their description from the same list, so
every route is documented and every documented path is served.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from agent.models import Subscription
from agent.web import api_auth
from agent.web.site import Site

Handler = Callable[[Request], Awaitable[Response]]

#: Every endpoint of this version is under this prefix.
PREFIX = "/api/v1"

#: ``{id:int}`` in a Starlette path: the name and its convertor.
_PARAM = re.compile(r"{(\w+)(?::(\w+))?}")


class Access(StrEnum):
    """Who may call an endpoint."""

    PUBLIC = "public"
    #: The subscriber, by the signed manage token of their subscription.
    SUBSCRIBER = "subscriber"
    #: An admin, by API key or login session (with the CSRF header to change things).
    ADMIN = "admin"


@dataclass(frozen=True)
class Endpoint:
    """One operation: method, path, handler, access, and its documentation."""

    method: str
    #: Under ``PREFIX``, in Starlette's syntax: ``/items/{id:int}``.
    path: str
    #: The OpenAPI ``operationId``; the docs page's strings are keyed by it.
    operation: str
    summary: str
    #: The group it is listed under.
    tag: str
    handler: Handler
    access: Access = Access.PUBLIC
    #: Models whose fields are the query parameters (validated with them).
    query: tuple[type[BaseModel], ...] = ()
    #: The model the JSON body is validated with.
    body: type[BaseModel] | None = None
    #: The success status, and the model of its body (``None``: no body).
    status: int = 200
    returns: type[BaseModel] | None = None
    #: Error statuses beyond those its access, body, query and path imply.
    errors: tuple[int, ...] = ()
    #: What each path parameter is.
    about: Mapping[str, str] = field(default_factory=dict)
    description: str = ""

    @property
    def url(self) -> str:
        """The full path as OpenAPI writes it: ``/api/v1/items/{id}``."""
        return PREFIX + _PARAM.sub(r"{\1}", self.path)

    def path_params(self) -> list[tuple[str, str]]:
        """Each path parameter's name and JSON type (``integer`` or ``string``)."""
        return [
            (name, "integer" if kind == "int" else "string")
            for name, kind in _PARAM.findall(self.path)
        ]

    def error_statuses(self) -> list[int]:
        """Every error status this endpoint may answer with."""
        found = set(self.errors)
        if self.access is Access.SUBSCRIBER:
            found |= {401, 410}
        if self.access is Access.ADMIN:
            found |= {401, 403}
        if self.body is not None:
            found |= {400, 413, 415, 422}
        if self.query:
            found.add(422)
        if self.path_params():
            found.add(404)
        return sorted(found)

    def route(self, site: Site) -> Route:
        """The Starlette route (under ``/api``), checking access before the handler runs."""
        handler, access = self.handler, self.access

        async def guarded(request: Request) -> Response:
            if access is Access.SUBSCRIBER:
                request.state.subscription = api_auth.subscriber(site, request)
            elif access is Access.ADMIN:
                request.state.actor = api_auth.admin(site, request)
            return await handler(request)

        guarded.__doc__ = self.summary
        return Route(
            PREFIX.removeprefix("/api") + self.path,
            guarded,
            methods=[self.method],
            name=self.operation,
        )


def subscription_of(request: Request) -> Subscription:
    """The subscription a subscriber's endpoint was called for (checked by its route)."""
    sub: Subscription = request.state.subscription
    return sub


def actor_of(request: Request) -> str:
    """Who called an admin's endpoint, as the audit log names them."""
    actor: str = request.state.actor
    return actor
