"""A server that answers with a recording made by ``smart-agent sources record``, as is.

The recording is real by construction: ``index.json`` and ``bodies/`` are what the
live source sent (layout in ``agent/recording.py``). A request is matched on its
method, path and query (the order of the query parameters does not matter; the
host does not either, so one server stands in for every host of a recording).
The answer is the recorded status, headers and body, with these exceptions:

* ``content-encoding`` is dropped when the body was stored decoded, and
  ``content-length``, ``transfer-encoding`` and ``connection`` are recomputed;
* ``date`` and ``server`` are uvicorn's own (it adds them; two would be joined);
* a ``location`` pointing at a recorded host is rewritten to this server, so
  redirects replay.

A request asked several times gets its recorded answers in order, then the last
one again. Anything not recorded is a 404 whose text lists what was recorded.
``app.state.calls`` lists every ``METHOD path?query`` asked.

From a recording to a test::

    cp -r recordings/budgetkey-tenders tests/data/recordings/budgetkey-tenders
    # complete its SOURCES.md (licence, edge cases), then in a test:
    folder = RECORDINGS / "budgetkey-tenders"
    with serve(recorded.build_app(folder)) as url:
        config = recorded.source_config(folder, url)
        watcher = TypeAdapter(Source).validate_python(config)
        batch = await watcher.poll(http, None)

``source_config`` is the config saved in ``index.json`` with the scheme and host
of every URL on a recorded host replaced by the server's, so the watcher asks the
same paths and queries. Absolute links inside bodies still name the live host.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tests.conftest import FIXTURES

#: Where recordings copied into the repository live.
RECORDINGS = FIXTURES / "recordings"

#: Headers the replay never copies: recomputed by the server, or its own.
_NOT_COPIED = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "date", "server"}
)
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

Key = tuple[str, str, tuple[tuple[str, str], ...]]


def key(method: str, path: str, query: list[tuple[str, str]] | list[list[str]]) -> Key:
    """The match key of a request: method, path, and its query as a sorted tuple."""
    pairs = tuple(sorted((str(name), str(value)) for name, value in query))
    return method.upper(), path or "/", pairs


def load(folder: Path) -> dict[str, Any]:
    """Read a recording's ``index.json``."""
    index: dict[str, Any] = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    return index


def source_config(folder: Path, base_url: str) -> dict[str, Any]:
    """The recorded source's config, with every URL on a recorded host moved to ``base_url``."""
    index = load(folder)
    origins = {_origin(httpx.URL(exchange["url"])) for exchange in index["exchanges"]}
    here = _origin(httpx.URL(base_url))

    def moved(value: Any) -> Any:
        if isinstance(value, dict):
            return {name: moved(item) for name, item in value.items()}
        if isinstance(value, list):
            return [moved(item) for item in value]
        if isinstance(value, str):
            for origin in origins:
                if value == origin or value.startswith(origin + "/"):
                    return here + value.removeprefix(origin)
        return value

    config: dict[str, Any] = moved(index["source"]["config"])
    return config


def build_app(folder: Path) -> Starlette:
    """Build the server for the recording in ``folder``."""
    exchanges = load(folder)["exchanges"]
    answers: dict[Key, list[dict[str, Any]]] = defaultdict(list)
    for exchange in exchanges:
        url = httpx.URL(exchange["url"])
        answers[key(exchange["method"], url.path, exchange["query"])].append(exchange)
    origins = {_origin(httpx.URL(exchange["url"])) for exchange in exchanges}
    asked: dict[Key, int] = defaultdict(int)
    calls: list[str] = []

    async def answer(request: Request) -> Response:
        query = request.query_params.multi_items()
        wanted = key(request.method, request.url.path, query)
        calls.append(f"{request.method} {request.url.path}?{request.url.query}")
        recorded = answers.get(wanted)
        if not recorded:
            return _not_recorded(request, exchanges)
        exchange = recorded[min(asked[wanted], len(recorded) - 1)]
        asked[wanted] += 1
        return _replay(folder, exchange, origins, str(request.base_url))

    app = Starlette(routes=[Route("/{path:path}", answer, methods=_METHODS)])
    app.state.calls = calls
    return app


def _replay(folder: Path, exchange: dict[str, Any], origins: set[str], base_url: str) -> Response:
    body = (folder / exchange["body"]).read_bytes()
    response = Response(body, status_code=exchange["status"])
    for name, value in exchange["headers"]:
        lowered = name.lower()
        if lowered in _NOT_COPIED or (lowered == "content-encoding" and exchange["decoded_from"]):
            continue
        if lowered == "location":
            value = _rewrite(value, origins, base_url)
        response.headers.append(name, value)
    return response


def _rewrite(location: str, origins: set[str], base_url: str) -> str:
    target = httpx.URL(location)
    if not target.is_absolute_url or _origin(target) not in origins:
        return location
    here = httpx.URL(base_url)
    return str(target.copy_with(scheme=here.scheme, host=here.host, port=here.port))


def _origin(url: httpx.URL) -> str:
    return f"{url.scheme}://{url.netloc.decode('ascii')}"


def _not_recorded(request: Request, exchanges: list[dict[str, Any]]) -> Response:
    lines = [
        f"not recorded: {request.method} {request.url.path}?{request.url.query}",
        "recorded requests:",
        *(f"  {e['method']} {httpx.URL(e['url']).raw_path.decode('ascii')}" for e in exchanges),
    ]
    return PlainTextResponse("\n".join(lines) + "\n", status_code=404)
