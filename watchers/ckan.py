"""Placeholder: being written."""

from __future__ import annotations

from typing import Literal

import httpx

from watchers.base import Batch, SourceSettings


class CkanWatcher(SourceSettings):
    """Placeholder."""

    kind: Literal["ckan"]

    async def poll(self, http: httpx.AsyncClient, cursor: str | None) -> Batch:
        """Placeholder."""
        raise NotImplementedError
