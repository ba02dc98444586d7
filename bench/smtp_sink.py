"""An SMTP server that accepts and counts, run in its own process for ``bench/mail.py``.

It is aiosmtpd (the server the tests use) with a handler that keeps nothing,
so the benchmark measures the client's work and not a mailbox's. Plain by
default; with ``--cert`` and ``--key`` it requires STARTTLS, and with
``--login user:password`` a login (over TLS), as a mail provider's
submission port (587) does. It prints ``PORT <n>`` once it listens; then each
line ``count`` on its standard input is answered with ``RECEIVED <messages>
CONNECTIONS <connections>``, and the end of its standard input stops it.

``running()`` starts it in a child process (with a certificate made by the
``openssl`` command when a login is asked for) and stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.fakes.smtp import self_signed

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Server:
    """A running sink: its port, its certificate (if TLS) and a message counter."""

    port: int
    ca_file: Path | None
    #: Ask the server how many messages and connections it has had.
    count: Callable[[], tuple[int, int]]


@contextmanager
def running(login: tuple[str, str] | None = None) -> Iterator[Server]:
    """Run the sink in a child process: plain, or STARTTLS with ``login`` required."""
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "bench.smtp_sink"]
        ca_file = None
        if login is not None:
            made = self_signed(Path(folder))
            ca_file = made.cert
            command += [
                "--cert",
                str(made.cert),
                "--key",
                str(made.key),
                "--login",
                ":".join(login),
            ]
        process = subprocess.Popen(
            command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert process.stdin is not None
        assert process.stdout is not None
        stdin, stdout = process.stdin, process.stdout

        def count() -> tuple[int, int]:
            stdin.write("count\n")
            stdin.flush()
            _, messages, _, connections = stdout.readline().split()
            return int(messages), int(connections)

        try:
            yield Server(int(stdout.readline().split()[1]), ca_file, count)
        finally:
            stdin.close()
            process.wait(timeout=30)
            stdout.close()


class _Counter:
    """aiosmtpd handler: accept every message, count messages and connections."""

    def __init__(self) -> None:
        self.messages = 0
        self.connections = 0

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.messages += 1
        return "250 OK"


def _authenticator(login: str) -> Any:
    user, _, password = login.partition(":")

    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            user.encode(),
            password.encode(),
        )
        return AuthResult(success=ok, handled=False)

    return check


async def serve(args: argparse.Namespace) -> None:
    """Listen on 127.0.0.1 until standard input ends."""
    loop = asyncio.get_running_loop()
    counter = _Counter()
    context = None
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)

    def connection() -> SMTP:
        counter.connections += 1
        return SMTP(
            counter,
            hostname="sink.bench",
            loop=loop,
            tls_context=context,
            require_starttls=context is not None,
            auth_required=bool(args.login),
            authenticator=_authenticator(args.login) if args.login else None,
        )

    server = await loop.create_server(connection, "127.0.0.1", 0)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    while line := await asyncio.to_thread(sys.stdin.readline):
        if line.strip() == "count":
            print(f"RECEIVED {counter.messages} CONNECTIONS {counter.connections}", flush=True)
    server.close()


def main() -> None:
    """Parse the options and serve."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cert", help="PEM certificate: require STARTTLS")
    parser.add_argument("--key", help="its PEM key")
    parser.add_argument("--login", help="user:password a client must log in with")
    # aiosmtpd logs every connection, and a deprecation notice at every login.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
