"""A feed server: every recorded feed fixture, with the HTTP headers its test declared.

``GET /<folder>/<file>`` serves ``fixtures/feeds/<folder>/<file>`` byte for byte.
Headers come from the ``Header:`` lines of the file's leading XML comment
(feedparser's test harness serves them the same way); ``ETag`` and
``Last-Modified`` answer conditional requests with 304. Query knobs for failure
tests: ``?status=500`` answers that status, ``?content_type=...`` overrides the
type. ``GET /html`` is an HTML page where a feed was expected. ``GET
/generated/multilingual.xml`` is a small Hebrew/Arabic/English feed served as
UTF-16LE with no BOM and no declaration, the way gov.il has been reported to.
"""

from __future__ import annotations

import re
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from tests.conftest import FIXTURES

#: Where the recorded feeds are.
FEEDS = FIXTURES / "feeds"

_HEADER_LINE = re.compile(rb"^\s*Header:\s*([A-Za-z-]+):\s*(.*?)\s*$", re.MULTILINE)
_DEFAULT_TYPES = {".atom": "application/atom+xml", ".rss": "application/rss+xml"}


def declared_headers(body: bytes) -> dict[str, str]:
    """Return the ``Header:`` lines of a fixture's leading comment, names lower-cased."""
    head = body[: body.find(b"-->") + 1] if b"-->" in body else b""
    return {
        name.decode().lower(): value.decode("latin-1") for name, value in _HEADER_LINE.findall(head)
    }


def feed_files() -> list[Path]:
    """Return every feed fixture, sorted by path."""
    return sorted(path for path in FEEDS.rglob("*") if path.is_file() and path.suffix != ".md")


async def _feed(request: Request) -> Response:
    path = (FEEDS / request.path_params["path"]).resolve()
    if FEEDS.resolve() not in path.parents or not path.is_file():
        return Response("not found", status_code=404)
    if status := request.query_params.get("status"):
        return Response("upstream failed", status_code=int(status))
    body = path.read_bytes()
    headers = declared_headers(body)
    headers.setdefault("content-type", _DEFAULT_TYPES.get(path.suffix, "application/xml"))
    if override := request.query_params.get("content_type"):
        headers["content-type"] = override
    if _not_modified(request, headers):
        return Response(status_code=304, headers=headers)
    return Response(body, headers=headers)


def _not_modified(request: Request, headers: dict[str, str]) -> bool:
    etag = headers.get("etag")
    modified = headers.get("last-modified")
    if etag and request.headers.get("if-none-match") == etag:
        return True
    return bool(modified and request.headers.get("if-modified-since") == modified)


async def _html(request: Request) -> Response:
    return HTMLResponse("<!doctype html><html><body><p>שגיאה – Error</p></body></html>")


#: A constructed feed in the three languages, with HTML summaries and one repeated entry.
MULTILINGUAL = """<rss version="2.0"><channel><title>משרד האוצר – הודעות</title>
<item><guid isPermaLink="false">gov-1</guid><title>קול קורא לעמותות בתחום החינוך</title>
<description>&lt;p&gt;הגשה עד &lt;b&gt;1.12.2026&lt;/b&gt; &amp;amp; פרטים&lt;/p&gt;</description>
<pubDate>Sun, 22 Nov 2026 08:00:00 +0200</pubDate><category>חינוך</category></item>
<item><guid isPermaLink="false">gov-2</guid>
<title>دعوة لتقديم مقترحات للسلطات المحلية العربية</title>
<description>تمويل مشاريع البنية التحتية</description>
<pubDate>Sun, 22 Nov 2026 09:30:00 +0200</pubDate></item>
<item><guid isPermaLink="false">gov-3</guid><title>Call for proposals: digital services</title>
<link>https://www.gov.il/en/departments/news/call-3?utm_source=rss</link></item>
<item><guid isPermaLink="false">gov-1</guid><title>קול קורא לעמותות בתחום החינוך</title></item>
</channel></rss>"""


async def _multilingual(request: Request) -> Response:
    body = MULTILINGUAL.encode("utf-16-le")
    return Response(body, headers={"content-type": "application/rss+xml"})


#: The feed server's Starlette app.
app = Starlette(
    routes=[
        Route("/html", _html),
        Route("/generated/multilingual.xml", _multilingual),
        Route("/{path:path}", _feed),
    ]
)
