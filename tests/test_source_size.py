"""A source that answers with too much is refused before it fills the memory.

An answer is read as a stream and given up past ``MAX_ANSWER_BYTES``, counted
after decompression, so a gzip bomb stops too; either way the poll fails with a
``SourceError`` (a failed poll, never "no news").
"""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from agent.errors import SourceError
from tests.conftest import serve
from watchers.base import MAX_ANSWER_BYTES
from watchers.rss import RssWatcher

#: A feed that decompresses to one byte over the limit (a few hundred KB on the wire).
BOMB = gzip.compress(b"<rss>" + b" " * (MAX_ANSWER_BYTES - 4), compresslevel=9)


async def _declared(request: Request) -> Response:
    # Says it is too long: refused from the header, before a byte of the body is read.
    async def body() -> AsyncIterator[bytes]:
        yield b"<rss></rss>"

    headers = {"content-length": str(MAX_ANSWER_BYTES + 1)}
    return StreamingResponse(body(), headers=headers, media_type="application/rss+xml")


async def _bomb(request: Request) -> Response:
    headers = {"content-encoding": "gzip"}
    return Response(BOMB, headers=headers, media_type="application/rss+xml")


APP = Starlette(routes=[Route("/declared.xml", _declared), Route("/bomb.xml", _bomb)])


@pytest.mark.parametrize("path", ["/declared.xml", "/bomb.xml"])
async def test_an_answer_over_the_limit_fails_the_poll(path: str) -> None:
    with serve(APP) as url:
        async with httpx.AsyncClient() as http:
            with pytest.raises(SourceError, match=f"over {MAX_ANSWER_BYTES:,} bytes"):
                await RssWatcher(kind="rss", url=f"{url}{path}").poll(http, None)
