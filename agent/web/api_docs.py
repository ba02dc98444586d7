"""The API's description for programs (``/api/openapi.json``) and for people (``/api/docs``).

The docs page lists the operations of the very document the JSON serves, so
it cannot show an endpoint that is not there; each operation's words come from
``t.api.op.<operationId>`` in the visitor's language (the document's English
summary when a catalogue lacks one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agent.web.api_endpoint import Access
from agent.web.openapi import TAGS, access_of
from agent.web.site import Site

#: The paths of the two descriptions, under ``/api``.
DOCUMENT = "/openapi.json"
DOCS = "/docs"


@dataclass(frozen=True)
class Operation:
    """One documented operation as the docs page lists it."""

    method: str
    path: str
    operation_id: str
    summary: str
    access: Access
    #: Its parameters' names (path, query and header).
    params: tuple[str, ...]
    #: Whether it takes a JSON body.
    body: bool
    #: Its success status.
    status: str


def routes(site: Site, spec: Mapping[str, Any]) -> list[Route]:
    """``/openapi.json`` and ``/docs`` (to be mounted under ``/api``)."""

    async def document(request: Request) -> Response:
        return JSONResponse(spec)

    async def docs(request: Request) -> Response:
        values = {
            "groups": groups(spec),
            "spec_url": "/api" + DOCUMENT,
            "base": site.links.public_url,
        }
        return site.pages.render(request, "api/docs.html", values)

    return [Route(DOCUMENT, document), Route(DOCS, docs)]


def groups(spec: Mapping[str, Any]) -> list[tuple[str, list[Operation]]]:
    """The document's operations by tag, in the order of ``TAGS`` and of the paths."""
    found: dict[str, list[Operation]] = {tag: [] for tag in TAGS}
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            found.setdefault(operation["tags"][0], []).append(_operation(path, method, operation))
    return [(tag, operations) for tag, operations in found.items() if operations]


def _operation(path: str, method: str, operation: Mapping[str, Any]) -> Operation:
    return Operation(
        method=method.upper(),
        path=path,
        operation_id=operation["operationId"],
        summary=operation["summary"],
        access=access_of(dict(operation)),
        params=tuple(param["name"] for param in operation.get("parameters", [])),
        body="requestBody" in operation,
        status=next(iter(operation["responses"])),
    )
