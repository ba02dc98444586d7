"""The JSON API's OpenAPI 3.1 description, made from its endpoints and their pydantic models.

``document(endpoints)`` turns each ``Endpoint`` into an operation: its path
and query parameters (the fields of the models the handler validates them
with), its JSON body and its answers (``model_json_schema`` of the models it
validates and returns, shared under ``components.schemas``), every error
status with the one error shape, and its security: none, the subscriber's
manage token, or an admin's API key or session. ``GET /api/openapi.json``
serves it and ``GET /api/docs`` lists it for people, in their language.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from agent import __version__
from agent.web.api_auth import SAFE_METHODS
from agent.web.api_endpoint import Access, Endpoint
from agent.web.api_schemas import ErrorBody
from agent.web.security import COOKIE

#: Where components are referred to.
REF = "#/components/schemas/{model}"

#: What each error status means here.
ERRORS = {
    400: "The body is not a JSON object.",
    401: "No credential, or one that is not valid.",
    403: "Not allowed (not an admin, or no CSRF header with a session).",
    404: "Not found.",
    409: "Not possible in its present state.",
    410: "The token has expired.",
    413: "The body is too large.",
    415: "The body is not JSON.",
    422: "Invalid fields: each is named, a rule's query error with its position.",
    429: "Too many requests from this client or for this address; see Retry-After.",
    503: "A channel could not be reached; try again later.",
}

#: The groups, in the order the docs list them.
TAGS = {
    "public": "Publications and sources: open to all.",
    "subscriber": "Subscribe, then manage your subscription with its manage token.",
    "admin": "For admins: an API key or an admin's login session.",
}

SECURITY_SCHEMES = {
    "manageToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "signed manage token",
        "description": "The last part of the subscription's manage link (/manage/<token>).",
    },
    "apiKey": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "sa_...",
        "description": "An API key made with `smart-agent admin create-api-key NAME`.",
    },
    "adminSession": {
        "type": "apiKey",
        "in": "cookie",
        "name": COOKIE,
        "description": (
            "An admin's login session; POST, PATCH and DELETE also need the session's "
            "CSRF token in the X-CSRF-Token header."
        ),
    },
}

#: Each access level's security requirement.
SECURITY: dict[Access, list[dict[str, list[str]]]] = {
    Access.PUBLIC: [],
    Access.SUBSCRIBER: [{"manageToken": []}],
    Access.ADMIN: [{"apiKey": []}, {"adminSession": []}],
}

Use = tuple[type[BaseModel], JsonSchemaMode]
#: Each use's ``$ref`` (as ``models_json_schema`` gives them).
Refs = dict[Any, dict[str, Any]]


def document(endpoints: Sequence[Endpoint], *, server: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``endpoints``, served from ``server``."""
    refs, defs = models_json_schema(_uses(endpoints), ref_template=REF)
    schemas: dict[str, Any] = defs.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.url, {})[endpoint.method.lower()] = _operation(
            endpoint, refs, schemas
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Smart Agent API",
            "version": __version__,
            "description": (
                "Publications, sources, subscriptions and deliveries as JSON. Every error is "
                '{"error": message, "errors": [{"field", "message", "position"}]}.'
            ),
        },
        "servers": [{"url": server}],
        "tags": [{"name": name, "description": text} for name, text in TAGS.items()],
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": SECURITY_SCHEMES},
    }


def _uses(endpoints: Sequence[Endpoint]) -> list[Use]:
    """Every model the endpoints validate with or return, and how it is used."""
    uses: dict[Use, None] = {(ErrorBody, "serialization"): None}
    for endpoint in endpoints:
        for model in endpoint.query:
            uses[(model, "validation")] = None
        if endpoint.body is not None:
            uses[(endpoint.body, "validation")] = None
        if endpoint.returns is not None:
            uses[(endpoint.returns, "serialization")] = None
    return list(uses)


def _operation(endpoint: Endpoint, refs: Refs, schemas: dict[str, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": endpoint.operation,
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
        "security": SECURITY[endpoint.access],
        "parameters": _parameters(endpoint, refs, schemas),
        "responses": _responses(endpoint, refs),
    }
    if endpoint.description:
        operation["description"] = endpoint.description
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(endpoint.body, "validation")]}},
        }
    return operation


def _parameters(endpoint: Endpoint, refs: Refs, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": endpoint.about.get(name, ""),
            "schema": {"type": kind},
        }
        for name, kind in endpoint.path_params()
    ]
    for model in endpoint.query:
        schema = schemas[_name(refs[(model, "validation")])]
        required = set(schema.get("required", []))
        for name, field in schema["properties"].items():
            found.append(_query_parameter(name, field, required=name in required))
    if endpoint.access is Access.ADMIN and endpoint.method not in SAFE_METHODS:
        found.append(
            {
                "name": "X-CSRF-Token",
                "in": "header",
                "required": False,
                "description": "With an admin's session (not with an API key): its CSRF token.",
                "schema": {"type": "string"},
            }
        )
    return found


def _query_parameter(name: str, field: dict[str, Any], *, required: bool) -> dict[str, Any]:
    parameter = {
        "name": name,
        "in": "query",
        "required": required,
        "schema": {key: value for key, value in field.items() if key != "description"},
    }
    if "description" in field:
        parameter["description"] = field["description"]
    if field.get("type") == "array":
        # A list repeats its parameter: ``kinds=tender&kinds=exemption``.
        parameter |= {"style": "form", "explode": True}
    return parameter


def _responses(endpoint: Endpoint, refs: Refs) -> dict[str, Any]:
    success: dict[str, Any] = {"description": "Done."}
    if endpoint.returns is not None:
        schema = refs[(endpoint.returns, "serialization")]
        success["content"] = {"application/json": {"schema": schema}}
    responses = {str(endpoint.status): success}
    error = {"application/json": {"schema": refs[(ErrorBody, "serialization")]}}
    for status in endpoint.error_statuses():
        responses[str(status)] = {"description": ERRORS[status], "content": error}
    return responses


def _name(ref: dict[str, Any]) -> str:
    """The component name a ``$ref`` points at."""
    return str(ref["$ref"]).rsplit("/", 1)[-1]


def access_of(operation: dict[str, Any]) -> Access:
    """Who may call a documented operation, read off its security."""
    names = {name for requirement in operation.get("security") or [] for name in requirement}
    if "manageToken" in names:
        return Access.SUBSCRIBER
    return Access.ADMIN if names else Access.PUBLIC
