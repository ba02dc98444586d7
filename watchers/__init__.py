"""Watchers: one module per source kind, and the registry that names them.

``Source`` is the registry: a ``[sources.<name>]`` table in ``config.toml`` is
validated into whichever watcher its ``kind`` key names.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from watchers.base import Batch, Watcher
from watchers.budgetkey import BudgetKeyWatcher
from watchers.ckan import CkanWatcher
from watchers.govil import GovilWatcher
from watchers.mof_changes import MofChangesWatcher
from watchers.ocds import OcdsWatcher
from watchers.rss import RssWatcher

#: Every source kind the agent knows, told apart by their ``kind`` key.
Source = Annotated[
    BudgetKeyWatcher | CkanWatcher | GovilWatcher | MofChangesWatcher | OcdsWatcher | RssWatcher,
    Field(discriminator="kind"),
]

__all__ = ["Batch", "Source", "Watcher"]
