"""The soak benchmark's source: Budget Key's search API replaying recorded documents.

Run by ``bench/soak.py`` as ``python -m bench.soak_source PLAN LOG``. It serves
``tests.fakes.budgetkey`` (the fake of ``/search/<doc_type>`` the watcher tests
use) over the recorded documents, stamped as indexed a day ago: the listing
the workers' first polls take as their silent baseline. It prints ``PORT <n>``
once it listens. At the line ``go`` on its standard input it starts the plan
(``bench.soak_plan``): each copy is added to its doc type's listing at its
instant, stamped ``__last_modified_at`` then, as Budget Key's indexer stamps
what it saw change, and a line ``{"key": ..., "t": ...}`` (the item key and the
Unix time it became visible) goes to LOG. The end of standard input stops it.
Its own process, so that publishing on time is not held up by anyone's work.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from bench import asgi, soak_plan
from tests.fakes import budgetkey
from tests.fakes.budgetkey_docs import indexed


def stamp(when: datetime) -> str:
    """A time as Budget Key's ``dump_to_es`` writes it."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def publish(
    served: dict[str, list[dict[str, Any]]],
    docs: dict[str, list[dict[str, Any]]],
    plan: list[soak_plan.Copy],
    log: IO[str],
) -> None:
    """Add each planned copy to the listing at its instant, and log when it became visible."""
    start = time.time()
    for planned in plan:
        doc = soak_plan.document(docs, planned)
        await asyncio.sleep(max(0.0, start + planned.at - time.time()))
        now = time.time()
        served[planned.doc_type].append(indexed(doc, stamp(datetime.fromtimestamp(now, UTC))))
        log.write(json.dumps({"key": doc["doc_id"], "t": now}) + "\n")
        log.flush()


async def serve(plan_path: Path, log_path: Path) -> None:
    """Serve the baseline; publish the plan after ``go``; stop when standard input ends."""
    docs = soak_plan.pool()
    plan = soak_plan.load(plan_path)
    yesterday = stamp(datetime.now(UTC) - timedelta(days=1))
    served = {
        kind: [indexed(dict(doc), yesterday) for doc in found] for kind, found in docs.items()
    }
    app = budgetkey.build_app(served)
    server, running = await asgi.start(app)
    publishing: asyncio.Task[None] | None = None
    with log_path.open("a", encoding="utf-8") as log:
        while line := await asyncio.to_thread(sys.stdin.readline):
            if line.strip() == "go" and publishing is None:
                publishing = asyncio.create_task(publish(served, docs, plan, log))
        if publishing is not None:
            publishing.cancel()
            await asyncio.gather(publishing, return_exceptions=True)
    server.should_exit = True
    await running


def main() -> None:
    """Parse the arguments and serve."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("plan", type=Path, help="the plan (bench.soak_plan.save)")
    parser.add_argument("log", type=Path, help="where visible instants are appended")
    args = parser.parse_args()
    asyncio.run(serve(args.plan, args.log))


if __name__ == "__main__":
    main()
