"""Record one live source's raw HTTP answers, in a folder the test fakes serve back as is.

``record()`` polls one configured source once through the agent's shared HTTP
client (``agent.service.http_client``), with a response hook that keeps every
request and response of the poll: pages, redirect hops, and helper fetches such
as gov.il's ``client-config.js``. ``write()`` saves them:

* ``index.json`` — the source (name, kind, config), the outcome of the poll, and
  every exchange: method, URL, query, request headers, status, response headers,
  time (ISO 8601 UTC) and body file;
* ``bodies/NNN.<ext>`` — each body exactly as received *after HTTP content
  decoding*: httpx undoes ``gzip``/``deflate``, and the exchange's
  ``decoded_from`` names the encoding, so a replay must not send the recorded
  ``content-encoding`` or ``content-length``;
* ``SOURCES.md`` — a stub to complete (licence, edge cases) when the folder is
  copied into ``tests/data/recordings/<name>/``.

Nothing here opens the database: recording a source never creates or changes one.
"""

from __future__ import annotations

import json
import logging
import mimetypes
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

import httpx

from agent.config import Config
from agent.errors import SourceError
from agent.service import http_client
from watchers import Source

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Pairs = list[tuple[str, str]]

#: Version of the ``index.json`` layout, for the fakes that read it.
FORMAT = 1

#: Content-type fragments and the extension their bodies are saved with (first match wins).
_EXTENSIONS = (
    ("json", ".json"),
    ("html", ".html"),
    ("xml", ".xml"),
    ("csv", ".csv"),
    ("javascript", ".js"),
    ("ecmascript", ".js"),
    ("text/", ".txt"),
)


@dataclass(frozen=True)
class Exchange:
    """One request the poll made and the response it got."""

    method: str
    url: str
    request_headers: Pairs
    status: int
    headers: Pairs
    time: datetime
    body: bytes
    #: The content-encoding httpx undid before ``body`` was kept, if any.
    decoded_from: str | None = None

    @property
    def query(self) -> Pairs:
        """The query parameters, in the order they were sent."""
        return httpx.URL(self.url).params.multi_items()

    @property
    def content_type(self) -> str:
        """The response's content type, without parameters."""
        value = next((v for k, v in self.headers if k.lower() == "content-type"), "")
        return value.split(";", 1)[0].strip().lower()


@dataclass
class Recording:
    """What one recorded poll sent and received, and how it ended."""

    name: str
    kind: str
    config: dict[str, Any]
    started: datetime
    exchanges: list[Exchange] = field(default_factory=list)
    items: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the poll succeeded."""
        return self.error is None

    @property
    def size(self) -> int:
        """Bytes of every body kept."""
        return sum(len(exchange.body) for exchange in self.exchanges)


class Recorder:
    """An httpx response hook that keeps every exchange of the client it is added to.

    A hook rather than a wrapping transport: hooks run for every redirect hop and on
    whichever transport carries the request, including the ones httpx mounts for
    ``HTTPS_PROXY``, which a transport given to the client would not see.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.exchanges: list[Exchange] = []

    def listen(self, http: httpx.AsyncClient) -> None:
        """Add this recorder to ``http``'s response hooks."""
        hooks = http.event_hooks
        hooks["response"] = [*hooks.get("response", []), self.keep]
        http.event_hooks = hooks

    async def keep(self, response: httpx.Response) -> None:
        """Read ``response`` (httpx undoes its content-encoding) and keep it."""
        received = self.clock()
        # Reading here is what the client does next anyway; it then reuses the content.
        await response.aread()
        request = response.request
        self.exchanges.append(
            Exchange(
                method=request.method,
                url=str(request.url),
                request_headers=request.headers.multi_items(),
                status=response.status_code,
                headers=response.headers.multi_items(),
                time=received,
                body=response.content,
                decoded_from=_decoded_from(request, response),
            )
        )


def _decoded_from(request: httpx.Request, response: httpx.Response) -> str | None:
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return None
    # httpx offers exactly the encodings it can undo; any other one reaches us as sent.
    offered = _tokens(request.headers.get("accept-encoding", ""))
    return encoding if _tokens(encoding) <= offered else None


def _tokens(header: str) -> set[str]:
    return {token.split(";")[0].strip().lower() for token in header.split(",") if token.strip()}


async def record(name: str, source: Source, config: Config, *, clock: Clock) -> Recording:
    """Poll ``source`` once with no cursor and return everything it received."""
    recording = Recording(name, source.kind, source.model_dump(mode="json"), clock())
    recorder = Recorder(clock)
    async with http_client(config) as http:
        recorder.listen(http)
        try:
            recording.items = len((await source.poll(http, None)).items)
        except SourceError as exc:
            recording.error = str(exc)
        except Exception as exc:
            # A watcher that breaks on a live answer is exactly what a recording should
            # capture: keep the answers and show the traceback instead of losing both.
            logger.exception("%s: the watcher failed on the live answers", name)
            recording.error = f"{type(exc).__name__}: {exc}"
    recording.exchanges = recorder.exchanges
    return recording


def write(recording: Recording, folder: Path) -> list[str]:
    """Save ``recording`` under ``folder``; return the body file names, in order."""
    bodies = folder / "bodies"
    bodies.mkdir(parents=True, exist_ok=True)
    for old in bodies.iterdir():
        if old.is_file():
            old.unlink()
    names = []
    for number, exchange in enumerate(recording.exchanges, start=1):
        name = f"bodies/{number:03d}{extension(exchange)}"
        (folder / name).write_bytes(exchange.body)
        names.append(name)
    index = _index(recording, names)
    (folder / "index.json").write_text(
        json.dumps(index, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    (folder / "SOURCES.md").write_text(sources_stub(recording, names), encoding="utf-8")
    return names


def extension(exchange: Exchange) -> str:
    """The file extension for a body: from its content type, else from its URL."""
    content_type = exchange.content_type
    for fragment, suffix in _EXTENSIONS:
        if fragment in content_type:
            return suffix
    guessed = mimetypes.guess_extension(content_type) if content_type else None
    suffix = guessed or PurePosixPath(httpx.URL(exchange.url).path).suffix.lower()
    return suffix if 1 < len(suffix) <= 6 and suffix[1:].isalnum() else ".bin"


def _index(recording: Recording, names: list[str]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "recorded_with": "smart-agent sources record",
        "source": {"name": recording.name, "kind": recording.kind, "config": recording.config},
        "started": recording.started.isoformat(),
        "outcome": {"ok": recording.ok, "items": recording.items, "error": recording.error},
        "exchanges": [
            {
                "method": exchange.method,
                "url": exchange.url,
                "query": exchange.query,
                "request_headers": exchange.request_headers,
                "status": exchange.status,
                "headers": exchange.headers,
                "time": exchange.time.isoformat(),
                "body": name,
                "bytes": len(exchange.body),
                "decoded_from": exchange.decoded_from,
            }
            for exchange, name in zip(recording.exchanges, names, strict=True)
        ],
    }


def sources_stub(recording: Recording, names: list[str]) -> str:
    """A ``SOURCES.md`` for the folder, listing every file; licence and edge cases to fill in."""
    outcome = (
        f"the poll succeeded with {recording.items} items"
        if recording.ok
        else f"the poll failed: {recording.error}"
    )
    rows = [
        f"| `{name}` | {exchange.method} {exchange.url} | {exchange.status} "
        f"| {exchange.content_type or '—'} | {len(exchange.body):,} |"
        for exchange, name in zip(recording.exchanges, names, strict=True)
    ]
    return "\n".join(
        [
            f"# Recording of the `{recording.name}` source ({recording.kind}) — sources",
            "",
            f"Recorded with `smart-agent sources record {recording.name}` at "
            f"{recording.started.isoformat()}; {outcome}. Every body is byte for byte what "
            "the server sent, after HTTP content decoding (see `decoded_from` in "
            "`index.json`, which also holds the URL, status, headers and time of each).",
            "",
            "Licence: _to fill in (the publisher's terms)._",
            "",
            "Edge cases: _to fill in (what these answers show that the fakes did not)._",
            "",
            "| file | request | status | type | bytes |",
            "| --- | --- | --- | --- | --- |",
            *rows,
            "",
        ]
    )
