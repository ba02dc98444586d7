"""The Telegram Bot API fake, run in its own process for ``bench/telegram_rate.py``.

It is ``tests/fakes/telegram.py`` (what the tests talk to): it enforces
Telegram's flood limits (30 messages a second in all, 1 a second per chat, 20
a minute per group) with 429 and ``retry_after``, and with ``--inject N`` it
also answers every Nth ``sendMessage`` 429 with ``retry_after`` 1, as Telegram
does when it wants a bot to slow down. Its own process, so that its clock of
arrivals is not held up by the benchmark's work. It prints ``PORT <n>`` once it
listens; when its standard input ends it stops and prints one JSON line: every
accepted message (chat id and text), the 429s its limits caused, those injected.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from bench import asgi
from tests.fakes import telegram

TOKEN = "123456:BENCH-token"


async def serve(args: argparse.Namespace) -> dict[str, Any]:
    """Serve until standard input ends; return what was received."""
    app = telegram.build_app(TOKEN)
    if args.inject:
        app.state.failures.extend((["ok"] * (args.inject - 1) + ["flood"]) * args.cycles)
    planned = app.state.failures.count("flood")
    server, running = await asgi.start(app)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    server.should_exit = True
    await running
    return {
        "sent": [[m["chat_id"], m["text"]] for m in app.state.sent],
        "flooded": app.state.flooded,
        "injected": planned - app.state.failures.count("flood"),
    }


def main() -> None:
    """Parse the options and serve."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--inject", type=int, default=0, help="answer every Nth send 429")
    parser.add_argument("--cycles", type=int, default=10_000, help="how many times to")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(serve(args)), ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
