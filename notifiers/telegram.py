"""Placeholder: being written."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict

from notifiers.base import Message


class TelegramNotifier(BaseModel):
    """Placeholder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def send(self, message: Message) -> str | None:
        """Placeholder."""
        raise NotImplementedError
