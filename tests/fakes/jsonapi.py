"""Responses shared by the JSON-API fakes: UTF-8 JSON, and the ways a real API fails.

A failure ``mode`` names what the upstream does instead of answering:

* ``"500"`` — a server error;
* ``"403"`` — a firewall refusal (gov.il, data.gov.il behind Cloudflare/Imperva);
* ``"html"`` — an HTML page with status 200, as data.gov.il's proxy sends;
* ``"challenge"`` — a bot-challenge page with status 200;
* ``"truncated"`` — JSON cut off halfway, with a JSON content type.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import pytest
from starlette.responses import HTMLResponse, Response

from agent.errors import SourceBlocked, SourceError

#: The ways a fake can be told to fail.
Failure = Literal["500", "403", "html", "challenge", "truncated"]

JSON_TYPE = "application/json; charset=utf-8"

#: Every failure mode with the error a watcher must raise for it, as test cases.
FAILURES = [
    pytest.param("500", SourceError, id="a server error raises"),
    pytest.param("403", SourceBlocked, id="a 403 is reported as blocked"),
    pytest.param("challenge", SourceBlocked, id="a challenge page is reported as blocked"),
    pytest.param("html", SourceError, id="an html page with status 200 raises"),
    pytest.param("truncated", SourceError, id="truncated json raises"),
]


def json_response(payload: Any) -> Response:
    """Serve ``payload`` as UTF-8 JSON (Hebrew unescaped, as Israeli APIs send it)."""
    return Response(json.dumps(payload, ensure_ascii=False).encode(), media_type=JSON_TYPE)


def failure(mode: Failure, payload: Any) -> Response:
    """Answer as a failing upstream would; ``payload`` is what a good answer held."""
    if mode == "500":
        return Response("Internal Server Error", status_code=500, media_type="text/plain")
    if mode == "403":
        return HTMLResponse("<html><body><h1>Access denied</h1></body></html>", status_code=403)
    if mode == "html":
        return HTMLResponse('<!DOCTYPE html><html dir="rtl"><body>שגיאה זמנית</body></html>')
    if mode == "challenge":
        return HTMLResponse('<html><body><div id="cf-challenge-running"></div></body></html>')
    body = json.dumps(payload, ensure_ascii=False).encode()
    return Response(body[: len(body) // 2], media_type=JSON_TYPE)
