"""Placeholder: being written."""

from __future__ import annotations

from typing import Literal

import httpx

from watchers.base import Batch, SourceSettings


class GovilWatcher(SourceSettings):
    """Placeholder."""

    kind: Literal["govil"]

    async def poll(self, http: httpx.AsyncClient, cursor: str | None) -> Batch:
        """Placeholder."""
        raise NotImplementedError
