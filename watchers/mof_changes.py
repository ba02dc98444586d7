"""Placeholder: being written."""

from __future__ import annotations

from typing import Literal

import httpx

from watchers.base import Batch, SourceSettings


class MofChangesWatcher(SourceSettings):
    """Placeholder."""

    kind: Literal["mof_changes"]

    async def poll(self, http: httpx.AsyncClient, cursor: str | None) -> Batch:
        """Placeholder."""
        raise NotImplementedError
