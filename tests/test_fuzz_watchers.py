"""Every watcher turns any garbled answer into a batch or a ``SourceError``, never a crash.

Each watcher polls its fake over real HTTP once cleanly, and the answers it got
are kept. Hypothesis then replaces one of those answers (chosen by index) with a
garbled copy: cut short, bytes flipped or inserted, a JSON value swapped for one
of the wrong type (``null``, ``10**400``, ``NaN``, a deep nest, a bad URL, a
date that overflows), a key removed, random bytes, another status code or
content type. Whatever it gets, ``poll`` must return a ``Batch`` or raise
``SourceError``: anything else escaping is the crash that used to stop
``run-once``. The runs are derandomised with a fixed example budget, so CI
sees the same inputs every time.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent.errors import SourceError
from tests.conftest import serve
from tests.fakes import budgetkey, ckan, feeds, govil, mof, ocds
from watchers import Batch, Source

#: Examples per watcher: the whole module stays well under a minute.
EXAMPLES = 120
#: One deep nest, as a hostile or broken server might send (Python's json recurses).
DEEP = 100_000

VAADA = "BudgetChanges_vaada_data_01042014.csv"
APPROV = "BudgetChanges_approv_data_01052014.csv"


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: status, headers and body."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


@dataclass(repr=False)
class Garbler:
    """Passes requests to a fake, keeping its answers, and garbles the one numbered ``target``."""

    app: ASGIApp | None = None
    answers: list[Answer] = field(default_factory=list)
    target: int | None = None
    garbled: Answer | None = None

    def arm(self, app: ASGIApp, target: int | None = None, garbled: Answer | None = None) -> None:
        """Serve ``app`` from now on, replacing answer number ``target`` with ``garbled``."""
        self.app, self.answers, self.target, self.garbled = app, [], target, garbled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None
        answer = await _capture(self.app, scope, receive)
        if len(self.answers) == self.target and self.garbled is not None:
            answer = self.garbled
        self.answers.append(answer)
        await _answer(send, answer)


async def _capture(app: ASGIApp, scope: Scope, receive: Receive) -> Answer:
    start: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def keep(message: Message) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, keep)
    return Answer(start["status"], list(start.get("headers", [])), b"".join(chunks))


async def _answer(send: Send, answer: Answer) -> None:
    # The length is recomputed; an encoding header would misdescribe a garbled body.
    dropped = {b"content-length", b"content-encoding"}
    headers = [(k, v) for k, v in answer.headers if k.lower() not in dropped]
    body = b"" if answer.status in (204, 304) else answer.body
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@dataclass(frozen=True)
class Case:
    """A watcher's configuration (given the fake's address) and the fake it polls."""

    name: str
    app: Callable[[], ASGIApp]
    config: Callable[[str], dict[str, Any]]
    #: Hypothesis examples: the fixed budget of this watcher.
    examples: int = EXAMPLES


CASES = [
    Case(
        "budgetkey tenders",
        budgetkey.build_app,
        lambda url: {"kind": "budgetkey", "base_url": url, "doc_type": "tenders", "page_size": 8},
    ),
    Case(
        "budgetkey budget changes",
        budgetkey.build_app,
        lambda url: {
            "kind": "budgetkey",
            "base_url": url,
            "doc_type": "national-budget-changes",
            "page_size": 40,
        },
    ),
    Case("ckan", ckan.build_app, lambda url: {"kind": "ckan", "base_url": url, "page_size": 5}),
    Case(
        "govil",
        govil.build_app,
        lambda url: {
            "kind": "govil",
            "base_url": f"{url}{govil.GATEWAY}",
            "client_config_url": f"{url}{govil.CLIENT_CONFIG}",
            "page_size": 40,
        },
    ),
    Case(
        "mof_changes",
        lambda: mof.app,
        lambda url: {
            "kind": "mof_changes",
            "discovery_url": f"{url}{mof.CONTENT_API}?files={VAADA},{APPROV}",
            "budget_url": f"{url}/budget/mof_budget20132014.csv",
        },
    ),
    Case(
        "ocds records then releases",
        lambda: ocds.app,
        lambda url: {
            "kind": "ocds",
            "url": f"{url}/chain/standard-fictional/record-package_after-tenderUpdate.json"
            "?next=/ocds/nsw-au/release-package_7.json",
        },
    ),
    Case(
        "rss",
        lambda: feeds.app,
        lambda url: {"kind": "rss", "url": f"{url}/real-gov/va.gov_rss_PressRel_2021-12-08.xml"},
    ),
    Case(
        "atom",
        lambda: feeds.app,
        lambda url: {"kind": "rss", "url": f"{url}/real-world/heise-developer_2016.atom"},
    ),
]


@dataclass(repr=False)
class Served:
    """The garbling server, and each case's fake and clean answers once read."""

    garbler: Garbler
    url: str
    apps: dict[str, ASGIApp] = field(default_factory=dict)
    clean: dict[str, list[Answer]] = field(default_factory=dict)

    def prepare(self, case: Case) -> tuple[ASGIApp, list[Answer]]:
        """Build the case's fake and poll it cleanly once, the first time only."""
        if case.name not in self.apps:
            self.apps[case.name] = case.app()
            self.garbler.arm(self.apps[case.name])
            batch = asyncio.run(_poll(case.config(self.url)))
            assert batch.items, f"{case.name}: the clean poll found nothing"
            self.clean[case.name] = self.garbler.answers
        return self.apps[case.name], self.clean[case.name]


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    """One garbling server for the module."""
    garbler = Garbler()
    with serve(garbler) as url:
        yield Served(garbler, url)


#: Made once: loading the CA bundle for every client would take most of each example.
_TLS = ssl.create_default_context()


async def _poll(config: dict[str, Any]) -> Batch:
    watcher = TypeAdapter(Source).validate_python(config)
    # As the service's client: redirects followed, a bounded wait.
    async with httpx.AsyncClient(timeout=10, follow_redirects=True, verify=_TLS) as http:
        return await watcher.poll(http, None)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_garbled_answer_gives_a_batch_or_a_source_error(served: Served, case: Case) -> None:
    app, clean = served.prepare(case)

    @settings(
        max_examples=case.examples,
        deadline=None,
        derandomize=True,  # the same inputs on every run: CI is reproducible
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=st.data())
    def poll_garbled(data: st.DataObject) -> None:
        target = data.draw(st.integers(0, len(clean) - 1), label="answer number")
        garbled = data.draw(garbles(clean[target]), label="garbled answer")
        served.garbler.arm(app, target, garbled)
        try:
            batch = asyncio.run(_poll(case.config(served.url)))
        except SourceError:
            return
        assert isinstance(batch, Batch)

    poll_garbled()


# --- what a garbled answer looks like ------------------------------------------------

#: Text that breaks parsers: overflowing numbers and dates, bad URLs, markup, huge cells.
WEIRD_TEXT = [
    "",
    " ",
    "0",
    "-1",
    "1e400",
    "-1e400",
    "nan",
    "inf",
    "9" * 400,
    "99/99/9999",
    "31.02.2017",
    "00/00/0000",
    "1/1/1",
    "01/01/0001",
    "0001-01-01",
    "0001-01-01T00:00:00",
    "9999-12-31T23:59:59-14:00",
    "1-ינו-1",
    "27-ינו-99999",
    "25:99 1.1.2020",
    "http://[::1",
    "http://\x00/x",
    "ftp://example.org/x",
    "//",
    "\x00",
    "<html><body>שגיאה</body></html>",
    "x" * 140_000,  # over csv's default field limit
]
#: Raw JSON text spliced in where a value was: too deep, too long, too large.
RAW_JSON = [
    "[" * DEEP + "]" * DEEP,
    '{"a":' * DEEP + "1" + "}" * DEEP,
    "9" * 5000,  # over Python's int digits limit
    "1e400",
    "-1e400",
    "NaN",
    "Infinity",
]
#: Bytes spliced into any body.
INSERTS = [
    *(text.encode() for text in WEIRD_TEXT),
    b'"',
    b"\n",
    b",",
    b"<",
    b"<a>" * 20_000,
    b"]]>",
    b"&#xFFFFFFFF;",
    b"\xff\xfe",
    b"\x1f\x8b",
    b"[" * DEEP,
    b"\xd7\x00\x80",
]
STATUSES = [200, 201, 204, 301, 302, 304, 400, 404, 418, 429, 500, 503]
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=iso-8859-8",
    "text/html; charset=utf-8",
    "application/xml",
    "application/rss+xml; charset=utf-16",
    "text/plain",
    "text/csv; charset=windows-1255",
    "",
]

_MARK = "\x00raw{}\x00"
#: Stands for "remove this key or entry" in a change.
_DROP = object()


def garbles(answer: Answer) -> st.SearchStrategy[Answer]:
    """Garbled copies of ``answer``: its body, status or content type changed."""
    bodies = [
        truncations(answer.body),
        flips(answer.body),
        insertions(answer.body),
        insertions(answer.body),
        st.binary(max_size=512),
    ]
    document = _json(answer.body)
    if document is not None:
        # Shapes that parse but surprise are where watchers crash: weigh them most.
        bodies += [reshaped(document, _paths(document))] * 6
    body = st.one_of(bodies)
    same = st.builds(lambda b: Answer(answer.status, answer.headers, b), body)
    other = st.builds(
        _with, st.just(answer), body, st.sampled_from(STATUSES), st.sampled_from(CONTENT_TYPES)
    )
    return st.one_of(same, same, same, other)


def truncations(body: bytes) -> st.SearchStrategy[bytes]:
    """``body`` cut short anywhere."""
    return st.integers(0, max(len(body) - 1, 0)).map(lambda end: body[:end])


def flips(body: bytes) -> st.SearchStrategy[bytes]:
    """``body`` with up to eight bytes replaced."""
    if not body:
        return st.just(body)
    change = st.tuples(st.integers(0, len(body) - 1), st.integers(0, 255))

    def apply(changes: list[tuple[int, int]]) -> bytes:
        out = bytearray(body)
        for at, value in changes:
            out[at] = value
        return bytes(out)

    return st.lists(change, min_size=1, max_size=8).map(apply)


def insertions(body: bytes) -> st.SearchStrategy[bytes]:
    """``body`` with breaking bytes spliced in anywhere."""
    at = st.integers(0, len(body))
    return st.builds(lambda i, extra: body[:i] + extra + body[i:], at, st.sampled_from(INSERTS))


def reshaped(document: Any, places: list[tuple[Any, ...]]) -> st.SearchStrategy[bytes]:
    """The JSON ``document`` with up to four values of the wrong type, or keys removed."""
    change = st.tuples(st.sampled_from(places), st.one_of(values(), values(), st.just(_DROP)))
    return st.lists(change, min_size=1, max_size=4).map(lambda c: _reshape(document, c))


def values() -> st.SearchStrategy[Any]:
    """JSON values of every type and none of the expected shape."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.just(10**400),
        st.floats(),
        st.text(st.characters(exclude_characters="/"), max_size=20),  # no "//host" to look up
        st.sampled_from(WEIRD_TEXT),
    )
    raw = st.sampled_from(range(len(RAW_JSON))).map(_MARK.format)
    return st.one_of(
        scalars,
        scalars,
        st.lists(scalars, max_size=3),
        st.dictionaries(st.text(max_size=5), scalars, max_size=3),
        raw,
    )


def _with(answer: Answer, body: bytes, status: int, content_type: str) -> Answer:
    headers = [(k, v) for k, v in answer.headers if k.lower() != b"content-type"]
    if content_type:
        headers.append((b"content-type", content_type.encode()))
    headers += [(b"location", b"http://[::1")] if status in (301, 302) else []
    return Answer(status, headers, body)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _paths(document: Any) -> list[tuple[Any, ...]]:
    # Every place in the document, breadth first, bounded for large pages.
    found: list[tuple[Any, ...]] = []
    queue: deque[tuple[tuple[Any, ...], Any]] = deque([((), document)])
    while queue and len(found) < 5000:
        path, node = queue.popleft()
        found.append(path)
        if isinstance(node, dict):
            queue.extend(((*path, key), child) for key, child in node.items())
        elif isinstance(node, list):
            queue.extend(((*path, index), child) for index, child in enumerate(node))
    return found


def _reshape(document: Any, changes: list[tuple[tuple[Any, ...], Any]]) -> bytes:
    copy = json.loads(json.dumps(document))
    for path, value in changes:
        if not path:
            copy = None if value is _DROP else value
            continue
        try:
            parent = copy
            for key in path[:-1]:
                parent = parent[key]
            if value is _DROP:
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
        except (LookupError, TypeError):
            continue  # an earlier change took this place away
    text = json.dumps(copy, ensure_ascii=False)
    for number, raw in enumerate(RAW_JSON):
        text = text.replace(json.dumps(_MARK.format(number)), raw)
    return text.encode("utf-8", "surrogatepass")
