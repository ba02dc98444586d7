"""The JSON API (``/api/v1``) and its OpenAPI description (``/api/openapi.json``, ``/api/docs``).

* public: ``GET /api/v1/items`` (filtered as rules filter), ``/items/{id}``
  (with its history), ``/sources`` (their health) -- ``agent.web.api_items``;
* subscribers: ``POST /api/v1/subscriptions``, then ``GET|PATCH|DELETE
  /api/v1/subscription`` with the manage token -- ``agent.web.api_subscriber``;
* admins (API key or session): ``/api/v1/admin/subscriptions[/{id}]``
  (``agent.web.api_admin``), ``/api/v1/admin/deliveries[/{id}[/retry|/replay]]``
  and ``/api/v1/admin/sources/{name}/poll`` (``agent.web.api_deliveries``).

Everything under ``/api`` is mounted together, with its own error handlers, so
every error, a 404 or a 405 included, has the one shape of ``api_core``.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount

from agent.web import api_admin, api_deliveries, api_docs, api_items, api_subscriber, openapi
from agent.web.api_core import ApiError, error_answer
from agent.web.api_endpoint import Endpoint
from agent.web.site import Site

logger = logging.getLogger(__name__)


def routes(site: Site) -> list[BaseRoute]:
    """This area's routes: ``/api``, mounted with the API's error handlers."""
    declared = endpoints(site)
    spec = openapi.document(declared, server=site.links.public_url)
    handlers = {ApiError: _refused, HTTPException: _http_error, Exception: _crashed}
    return [
        Mount(
            "/api",
            routes=[*(e.route(site) for e in declared), *api_docs.routes(site, spec)],
            middleware=[Middleware(ExceptionMiddleware, handlers=handlers)],
        )
    ]


def endpoints(site: Site) -> list[Endpoint]:
    """Every endpoint of the API, in the order the docs list them."""
    return [
        *api_items.endpoints(site),
        *api_subscriber.endpoints(site),
        *api_admin.endpoints(site),
        *api_deliveries.endpoints(site),
    ]


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_answer(exc.status, exc.message, exc.errors, exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_answer(exc.status_code, exc.detail, headers=exc.headers)


async def _crashed(request: Request, exc: Exception) -> Response:
    # Logged with its traceback as the server would; the caller gets the usual shape.
    logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error_answer(500, "Internal error")
