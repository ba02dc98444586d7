"""The shared subscription form: a rule, a name, channels with their recipients, language, cadence.

Errors are kept by field as codes (``name_missing``, ``address_invalid``...)
that the page says in the reader's language (``t.orgs.problem``); the rule's
own errors stay on its ``RuleForm``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData

import notifiers
from agent.models import Subscription
from agent.rules import RuleSpec
from agent.schedule import Cadence
from agent.subscriptions import (
    ADDRESS_FIELDS,
    CADENCES,
    LANGUAGES,
    MAX_ADDRESS_LENGTH,
    MAX_NAME_LENGTH,
    SubscriptionInput,
    to_input,
)
from agent.web.forms import RuleForm, read_rule


class Problem(StrEnum):
    """What is wrong with a field of the form."""

    NAME_MISSING = "name_missing"
    NAME_INVALID = "name_invalid"
    CHANNELS_MISSING = "channels_missing"
    ADDRESS_MISSING = "address_missing"
    ADDRESS_INVALID = "address_invalid"
    INVALID = "invalid"


@dataclass
class SharedForm:
    """The form as given (or as stored), and what is wrong with it by field."""

    rule: RuleForm
    name: str = ""
    channels: list[str] = field(default_factory=list)
    #: Addresses by channel, as typed (also for channels left unticked, to show them again).
    addresses: dict[str, str] = field(default_factory=dict)
    language: str = LANGUAGES[0]
    cadence: str = Cadence.IMMEDIATE.value
    #: Problems by field: ``name``, ``channels``, a channel's name (its address), ``""``.
    errors: dict[str, Problem] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the form can be saved."""
        return self.rule.ok and not self.errors


def blank(params: Any, *, language: str) -> SharedForm:
    """A new subscription's form; a search's query string fills in the rule."""
    return SharedForm(read_rule(params, require=False), language=language)


def of(sub: Subscription) -> SharedForm:
    """A stored subscription's form."""
    return SharedForm(
        RuleForm(RuleSpec.model_validate(sub.rule or {})),
        name=sub.name,
        channels=list(sub.channels),
        addresses=dict(sub.addresses or {}),
        language=sub.language,
        cadence=sub.cadence,
    )


def read(form: FormData, available: Collection[str]) -> SharedForm:
    """Read and check a posted form; ``available`` are the configured channels."""
    shared = SharedForm(
        read_rule(form, require=True),
        name=str(form.get("name") or "").strip(),
        channels=[c for c in dict.fromkeys(map(str, form.getlist("channels"))) if c in available],
        addresses={
            name: str(form.get(address_field) or "").strip()
            for name, address_field in ADDRESS_FIELDS.items()
        },
        language=_one_of(form.get("language"), LANGUAGES),
        cadence=_one_of(form.get("cadence"), CADENCES),
    )
    shared.errors = _problems(shared)
    return shared


def to_subscription_input(shared: SharedForm, stored: Subscription | None) -> SubscriptionInput:
    """The form as ``subscriptions.save`` takes it; what it does not show is kept from ``stored``.

    Raises ``ValueError`` when the whole does not validate (the form's checks should prevent it).
    """
    kept: dict[str, Any] = to_input(stored).model_dump() if stored is not None else {}
    cadences: Mapping[str, Any] = kept.get("cadences") or {}
    values = {
        **kept,
        "name": shared.name,
        "channels": shared.channels,
        "addresses": {c: shared.addresses[c] for c in shared.channels if c in ADDRESS_FIELDS},
        "language": shared.language,
        "cadence": shared.cadence,
        "cadences": {c: v for c, v in cadences.items() if c in shared.channels},
        "rule": shared.rule.spec,
    }
    try:
        return SubscriptionInput.model_validate(values)
    except ValidationError as exc:
        raise ValueError(str(exc)) from exc


def _problems(shared: SharedForm) -> dict[str, Problem]:
    problems: dict[str, Problem] = {}
    if not shared.name:
        problems["name"] = Problem.NAME_MISSING
    elif len(shared.name) > MAX_NAME_LENGTH or any(
        unicodedata.category(char) == "Cc" for char in shared.name
    ):
        problems["name"] = Problem.NAME_INVALID
    if not shared.channels:
        problems["channels"] = Problem.CHANNELS_MISSING
    for name in shared.channels:
        if name in ADDRESS_FIELDS and (problem := _address_problem(name, shared.addresses[name])):
            problems[name] = problem
    return problems


def _address_problem(channel: str, address: str) -> Problem | None:
    if not address:
        return Problem.ADDRESS_MISSING
    if len(address) > MAX_ADDRESS_LENGTH:
        return Problem.ADDRESS_INVALID
    try:
        notifiers.channel(channel).check_address(address)
    except ValueError:
        return Problem.ADDRESS_INVALID
    return None


def _one_of(given: object, choices: tuple[str, ...]) -> str:
    return given if isinstance(given, str) and given in choices else choices[0]
