"""A PostgreSQL server of one test's own, which the test can stop and start again.

The session's shared server must not go away under everyone else's tests: a
test that restarts its server takes one of its own (``tests.postgres.running``)
and calls its ``stop()`` and ``start()`` while clients are connected.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from tests import postgres


@contextlib.contextmanager
def restartable() -> Iterator[postgres.Server]:
    """Start a throwaway server of this test's own; stop it and remove it at the end."""
    if postgres.BIN is None:
        pytest.skip(postgres.REASON)
    with postgres.running() as server:
        yield server
