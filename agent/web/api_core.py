"""What every JSON API handler shares: reading requests, answering, and the one error shape.

Every error is ``{"error": "<message>", "errors": [{"field", "message",
"position"}]}`` (``ErrorBody``) with its status: 400 a body that is not a JSON
object, 401 no or a wrong credential, 403 not allowed, 404 not found, 409 in
the wrong state for that, 410 an expired token, 413 a body over 64 KiB,
415 a body that is not JSON, 422 invalid fields (pydantic's by field, a
rule's with the position in its query, as the pages show them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, get_origin

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

from agent.errors import RuleError
from agent.rules import Node, RuleSpec
from agent.subscriptions import ADDRESS_FIELDS
from agent.web.api_schemas import ErrorBody, FieldError, PageInfo, PageQuery
from agent.web.forms import RULE_FIELDS, RuleForm

#: The largest request body read (a subscription is a few hundred bytes).
MAX_BODY = 64 * 1024

Model = TypeVar("Model", bound=BaseModel)

#: ``email: not an address`` -- a model-level message that names its field first.
_NAMED = re.compile(r"(\w+): ")
#: ``the email channel needs an 'email'`` -- an address that is missing.
_NEEDS = re.compile(r"the (\w+) channel needs an? '")


class ApiError(Exception):
    """An answer other than success: its status, message and fields at fault."""

    def __init__(
        self,
        status: int,
        message: str,
        errors: Sequence[FieldError] = (),
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = list(errors)
        self.headers = dict(headers or {})


def answer(model: BaseModel, status: int = 200) -> JSONResponse:
    """A model as the JSON answer."""
    return JSONResponse(model.model_dump(mode="json"), status_code=status)


def error_answer(
    status: int,
    message: str,
    errors: Sequence[FieldError] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """An error in the one shape every error has."""
    body = ErrorBody(error=message, errors=list(errors))
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


def invalid(errors: Sequence[FieldError]) -> ApiError:
    """422 for these field errors; the message repeats the first."""
    first = errors[0]
    message = f"{first.field}: {first.message}" if first.field else first.message
    return ApiError(422, message, errors)


def field_errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    """Pydantic's errors by field (dotted path), model-level ones by the field they name."""
    found = []
    for err in exc.errors(include_url=False):
        message = str(err["ctx"]["error"]) if err["type"] == "value_error" else err["msg"]
        path = ".".join(str(part) for part in err["loc"])
        if not path:
            path, message = _named_field(message)
        found.append(FieldError(field=prefix + path, message=message))
    return found


def _named_field(message: str) -> tuple[str, str]:
    """The field a model-level message is about, and the message without its name."""
    if (needs := _NEEDS.match(message)) is not None and needs[1] in ADDRESS_FIELDS:
        return f"addresses.{needs[1]}", message
    named = _NAMED.match(message)
    if named is None:
        return "", message
    channels = {field: channel for channel, field in ADDRESS_FIELDS.items()}
    if named[1] in channels:
        return f"addresses.{channels[named[1]]}", message[named.end() :]
    return named[1], message[named.end() :]


def compile_rule(spec: RuleSpec, prefix: str = "") -> Node:
    """The rule's tree; 422 naming the field (and the query position) it fails on."""
    try:
        return spec.compile()
    except RuleError as exc:
        field = "query" if exc.position is not None else _rule_field(exc.message)
        name = prefix + field if field else prefix.rstrip(".")
        error = FieldError(field=name, message=exc.message, position=exc.position)
        raise invalid([error]) from None


def form_errors(form: RuleForm) -> list[FieldError]:
    """A rule form's errors (``read_rule``) as field errors."""
    return [
        FieldError(field=name, message=message, position=form.position if name == "query" else None)
        for name, message in form.errors.items()
    ]


def _rule_field(message: str) -> str:
    head = message.split(":", 1)[0].strip()
    return head if head in RULE_FIELDS else ""


async def read_body(request: Request, model: type[Model]) -> Model:
    """The JSON body validated as ``model``; 415, 413, 400 or 422 otherwise."""
    data = await read_json(request)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid(field_errors(exc)) from None


async def read_json(request: Request) -> dict[str, Any]:
    """The request's JSON object, read at most ``MAX_BODY`` bytes far."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json" and not kind.endswith("+json"):
        raise ApiError(415, "send the body as JSON (Content-Type: application/json)")
    if int(request.headers.get("content-length") or 0) > MAX_BODY:
        raise ApiError(413, f"the body is over {MAX_BODY} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise ApiError(413, f"the body is over {MAX_BODY} bytes")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise ApiError(400, "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object")
    return data


def read_query(request: Request, model: type[Model]) -> Model:
    """The query parameters validated as ``model`` (list fields may repeat); 422 otherwise."""
    params = request.query_params
    data: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if get_origin(info.annotation) is list:
            if values := params.getlist(name):
                data[name] = values
        elif (value := params.get(name)) not in (None, ""):
            data[name] = value
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid(field_errors(exc)) from None


def page_info(
    request: Request, paging: PageQuery, *, total: int | None, more: bool, limited: bool = False
) -> PageInfo:
    """Where this page is, with links to the next and previous pages."""
    url = request.url
    following = str(url.include_query_params(page=paging.page + 1)) if more else None
    before = str(url.include_query_params(page=paging.page - 1)) if paging.page > 1 else None
    return PageInfo(
        page=paging.page,
        per_page=paging.per_page,
        total=total,
        next=following,
        previous=before,
        limited=limited,
    )
