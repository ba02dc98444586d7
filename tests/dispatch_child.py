"""A dispatcher in a process of its own, released at an agreed instant.

``python -m tests.dispatch_child CONFIG AT`` waits until the wall-clock time
``AT`` (seconds since the epoch), runs one dispatch run of the real agent, and
prints how many deliveries it sent. Two of them started with the same ``AT``
race for the same due rows, as ``serve`` and a ``run-once`` do.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from agent.config import load_config
from agent.service import Agent


async def main(config_path: str, at: float) -> None:
    """Dispatch once at ``at``."""
    async with Agent.open(load_config(Path(config_path))) as agent:
        await asyncio.sleep(max(0.0, at - time.time()))
        result = await agent.dispatch()
    print(result.sent)  # noqa: T201


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
