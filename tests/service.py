"""Running ``smart-agent`` as a user does: a child process, a folder, a config, real fakes.

Shared by the tests that start the real commands (``run-once``, ``serve``) and
look only at what they do from the outside: the requests the fakes receive,
the mail, the Telegram messages, the feeds and ``/health``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

#: Secrets stay out of the config file, as the README tells users.
TELEGRAM_TOKEN = "123456:TEST-token"
SIGNING_KEY = "test-signing-key"

#: What must never appear on a command's stderr: Python warnings, tracebacks,
#: unawaited coroutines, errors swallowed in finalisers.
_NOISE = re.compile(
    r"Traceback|\w+Warning: |never awaited|Exception ignored|Task exception was never retrieved"
)


class Switch:
    """An ASGI app whose behaviour a test can swap while it is being served."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class Counted:
    """Counts the HTTP requests an app receives, by path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.paths: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.paths[scope["path"]] += 1
        await self.app(scope, receive, send)

    @property
    def total(self) -> int:
        """Every request so far."""
        return sum(self.paths.values())


#: Where ``free_port`` looks: below Linux's ephemeral range (32768–60999), so that
#: no ``bind(0)`` and no outgoing connection, of any process, takes the port
#: between ``free_port`` answering and the server binding it.
_PORTS = range(20_000, 32_000)
#: Each xdist worker (``gw0``, ``gw1``…) looks in a slice of its own, so two
#: workers never hand out the same port.
_SLICE = 500


def _slice() -> range:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = int(worker) % (len(_PORTS) // _SLICE) if worker.isdigit() else 0
    return _PORTS[index * _SLICE : (index + 1) * _SLICE]


#: The next port to try; the process id spreads two runs side by side apart.
_TURN = itertools.count(os.getpid() % _SLICE)


def free_port() -> int:
    """A TCP port nobody listens on right now, for a server that must be told its port."""
    ports = _slice()
    for _ in ports:
        port = ports[next(_TURN) % len(ports)]
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise AssertionError(f"no free port in {ports}")


def user_env() -> dict[str, str]:
    """The environment a user would export: secrets from the environment."""
    return {
        **os.environ,
        "SMART_AGENT_NOTIFIERS__TELEGRAM__TOKEN": TELEGRAM_TOKEN,
        "SMART_AGENT_AGENT__SIGNING_KEY": SIGNING_KEY,
    }


def smart_agent(folder: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``smart-agent ARGS`` in ``folder`` and return what it did; stderr must be clean."""
    result = subprocess.run(
        [sys.executable, "-m", "agent", *args],
        cwd=folder,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    assert_clean(result.stderr)
    return result


def assert_clean(stderr: str) -> None:
    """Fail if ``stderr`` has a warning, a traceback or an unawaited coroutine."""
    noise = [line for line in stderr.splitlines() if _NOISE.search(line)]
    assert not noise, "stderr is not clean:\n" + stderr


@contextlib.contextmanager
def serving(folder: Path, *args: str) -> Iterator[Callable[[], str]]:
    """Run ``smart-agent serve`` in ``folder``; yield a function returning its stderr so far.

    On exit it is stopped with SIGTERM, must exit 0, and its stderr must be clean.
    """
    log = folder / "serve.log"
    with (
        log.open("w", encoding="utf-8") as sink,
        subprocess.Popen(
            [sys.executable, "-m", "agent", *args, "serve"],
            cwd=folder,
            env=user_env(),
            stdout=subprocess.DEVNULL,
            stderr=sink,
        ) as child,
    ):
        try:
            yield lambda: log.read_text(encoding="utf-8")
        finally:
            _stop(child, sink)
        assert child.returncode == 0, log.read_text(encoding="utf-8")
    assert_clean(log.read_text(encoding="utf-8"))


def _stop(child: subprocess.Popen[bytes], sink: IO[str]) -> None:
    child.send_signal(signal.SIGTERM)
    try:
        child.wait(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    sink.flush()


def wait_until(condition: Callable[[], object], timeout: float = 30.0, what: str = "") -> None:
    """Poll ``condition`` until it is true, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or condition}")


def get(url: str) -> httpx.Response | None:
    """GET ``url``, or ``None`` while nothing listens there yet."""
    try:
        return httpx.get(url, timeout=5.0)
    except httpx.TransportError:
        return None
