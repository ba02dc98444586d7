"""Subscription files: a list people keep, imported all or nothing.

A subscription file (TOML or JSON) holds a list under ``subscriptions``; each
entry has the rule fields of ``agent.rules.RuleSpec`` (``query``, ``kinds``,
``publishers``, ``amount_min``, ...) next to the delivery fields of
``SubscriptionInput``, and must name its ``channels``. Importing the same name
again updates it.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Collection
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent.config import format_errors
from agent.errors import AgentError
from agent.subscriptions import CHANNELS, SubscriptionInput, check_channels

#: An import file is a list people keep: far below this (10⁵ subscriptions take ~30 MB).
MAX_IMPORT_BYTES = 64 * 1024 * 1024


def read_file(path: Path, *, available: Collection[str]) -> list[SubscriptionInput]:
    """Parse and check a TOML or JSON subscription file; raise ``AgentError`` naming the entry.

    ``available`` are the configured channels; every entry must name its own.
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise AgentError(f"{path}: cannot be read: {exc.strerror or exc}") from exc
    if size > MAX_IMPORT_BYTES:
        raise AgentError(
            f"{path}: {size:,} bytes is over the {MAX_IMPORT_BYTES:,} an import may have"
        )
    text = path.read_text(encoding="utf-8")
    try:
        data: Any = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise AgentError(f"{path}: cannot be parsed: {exc}") from exc
    except RecursionError as exc:
        raise AgentError(f"{path}: cannot be parsed: nested too deeply") from exc
    entries = data.get("subscriptions", []) if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise AgentError(f"{path}: 'subscriptions' must be a list")
    found: dict[str, SubscriptionInput] = {}
    for index, entry in enumerate(entries):
        given = _entry(entry, f"{path}: subscriptions[{index}]", available)
        if given.name in found:
            raise AgentError(
                f"{path}: subscriptions[{index}]: the name {given.name!r} is used twice"
            )
        found[given.name] = given
    return list(found.values())


def _entry(entry: Any, where: str, available: Collection[str]) -> SubscriptionInput:
    name = entry.get("name", "?") if isinstance(entry, dict) else "?"
    if isinstance(entry, dict) and "channels" not in entry:
        raise AgentError(
            f"{where} ({name}): 'channels' is missing: list one or more of {', '.join(CHANNELS)}"
        )
    try:
        given = SubscriptionInput.model_validate(entry)
        given.rule.compile()
        check_channels(given, available)
    except ValidationError as exc:
        raise AgentError(f"{where} ({name}):\n{format_errors(exc)}") from exc
    except AgentError as exc:
        raise AgentError(f"{where} ({name}): {exc}") from exc
    return given
