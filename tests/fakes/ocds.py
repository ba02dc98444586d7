"""An OCDS server: the recorded OCDS fixtures, byte for byte, plus page chaining.

Routes:

* ``GET /ocds/<folder>/<file>`` serves ``fixtures/ocds/<folder>/<file>`` as recorded
  (``?status=500`` answers that status instead).
* ``GET /chain/<folder>/<file>?next=<path>`` serves the same document with its
  pagination link (``links.next``, or Armenia's ``next_page.uri``) rewritten to the
  *relative* ``<path>``, so a watcher must resolve it against the page URL;
  ``next=self`` makes the page point at itself, as a looping API would.
* ``GET /truncated/<folder>/<file>`` serves the first half of the file.
* ``GET /uk-duplicates.json`` is a release package holding the two recorded UK
  Contracts Finder releases that share ocid, id and date.
* ``GET /html`` is an HTML error page where JSON was expected.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from tests.conftest import FIXTURES

#: Where the recorded OCDS files are.
OCDS = FIXTURES / "ocds"
_JSON = "application/json"


def ocds_files() -> list[Path]:
    """Return every OCDS fixture, sorted by path."""
    return sorted(OCDS.rglob("*.json"))


def _fixture(request: Request) -> Path | None:
    path = (OCDS / request.path_params["path"]).resolve()
    return path if OCDS.resolve() in path.parents and path.is_file() else None


async def _file(request: Request) -> Response:
    path = _fixture(request)
    if path is None:
        return Response("not found", status_code=404)
    if status := request.query_params.get("status"):
        return Response("upstream failed", status_code=int(status))
    return Response(path.read_bytes(), media_type=_JSON)


async def _chain(request: Request) -> Response:
    path = _fixture(request)
    if path is None:
        return Response("not found", status_code=404)
    data: dict[str, Any] = json.loads(path.read_bytes())
    following = request.query_params["next"]
    if following == "self":
        following = f"{request.url.path}?{request.url.query}"
    if "next_page" in data:
        data["next_page"] = {"uri": following}
    else:
        data["links"] = {**data.get("links", {}), "next": following}
    return JSONResponse(data)


async def _truncated(request: Request) -> Response:
    path = _fixture(request)
    if path is None:
        return Response("not found", status_code=404)
    body = path.read_bytes()
    return Response(body[: len(body) // 2], media_type=_JSON)


async def _uk_duplicates(request: Request) -> Response:
    folder = OCDS / "uk-contracts-finder"
    releases = [
        json.loads((folder / f"release_ocds-b5fd17-2c330cf9_{copy}.json").read_bytes())
        for copy in ("a", "b")
    ]
    return JSONResponse({"uri": str(request.url), "releases": releases})


async def _html(request: Request) -> Response:
    return HTMLResponse("<html><body><h1>502 Bad Gateway</h1></body></html>")


#: The OCDS server's Starlette app.
app = Starlette(
    routes=[
        Route("/ocds/{path:path}", _file),
        Route("/chain/{path:path}", _chain),
        Route("/truncated/{path:path}", _truncated),
        Route("/uk-duplicates.json", _uk_duplicates),
        Route("/html", _html),
    ]
)
