"""Placeholder: being written."""

from __future__ import annotations

from typing import Literal

import httpx

from watchers.base import Batch, SourceSettings


class OcdsWatcher(SourceSettings):
    """Placeholder."""

    kind: Literal["ocds"]

    async def poll(self, http: httpx.AsyncClient, cursor: str | None) -> Batch:
        """Placeholder."""
        raise NotImplementedError
