"""Serving a fake in a benchmark's child process, on a free loopback port."""

from __future__ import annotations

import asyncio
import socket

import uvicorn
from starlette.types import ASGIApp


async def start(app: ASGIApp) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    """Serve ``app`` on 127.0.0.1; once it is up, print ``PORT <n>`` for the parent to read.

    Stop it with ``server.should_exit = True`` and await the task.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    running = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 -- uvicorn sets a flag, not an event
        await asyncio.sleep(0.01)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    return server, running
