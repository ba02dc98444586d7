"""The subscribe form: its channels, its fields, and reading it into a ``SubscriptionInput``.

The form has the rule's fields (``agent.web.forms``), an optional name, one
channel (a radio button per configured channel; a channel whose address is
typed shows its address field, named as the channel's ``address_field``), the
subscriber's language and a cadence. Errors are kept by field as keys of
``t.subscribe.error`` (the page says them in the visitor's language); the
rule's own errors stay in ``rule.errors``, at their position.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

import notifiers
from agent.subscriptions import (
    CADENCES,
    LANGUAGES,
    MAX_ADDRESS_LENGTH,
    MAX_NAME_LENGTH,
    SubscriptionInput,
)
from agent.web.forms import Params, RuleForm, read_rule
from notifiers.base import Verification

#: The longest name made from a rule; the subscriber may type a longer one.
DEFAULT_NAME_LENGTH = 80


class Problem(StrEnum):
    """What is wrong with a field or the sign-up (a key of ``t.subscribe.error``)."""

    NAME = "name"
    CHANNEL = "channel"
    ADDRESS_MISSING = "address_missing"
    ADDRESS_INVALID = "address_invalid"
    LANGUAGE = "language"
    CADENCE = "cadence"
    #: The confirmation could not be sent; the subscription waits for it.
    NOT_SENT = "not_sent"
    #: The chosen channel cannot be used now.
    UNAVAILABLE = "unavailable"
    #: Too many sign-ups from the visitor's network lately (``signup.PER_CLIENT``).
    TOO_MANY = "too_many"


@dataclass(frozen=True)
class Channel:
    """A channel the form offers, and how it asks for an address."""

    name: str
    verification: Verification
    #: The form field with the typed address (the channel's ``address_field``), if typed.
    address_field: str | None
    #: The HTML input type and autocomplete token for it (``email``).
    address_input: str | None


@dataclass
class SubscribeForm:
    """What the form holds: the values as given, and what is wrong with them."""

    rule: RuleForm
    name: str
    channel: str
    #: Typed addresses by form field (``email``).
    addresses: dict[str, str]
    language: str
    cadence: str
    #: Problems by form field (``name``, ``channel``, ``email``, ``language``, ``cadence``).
    errors: dict[str, Problem] = field(default_factory=dict)
    #: Ready to sign up: the subscription, and the channels whose chat connects itself.
    given: SubscriptionInput | None = None
    connect: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether everything, the rule too, is valid."""
        return self.given is not None


def channels(enabled: Mapping[str, object]) -> list[Channel]:
    """The channels the form offers: the configured ones, in the registry's order."""
    found = []
    for name in enabled:
        cls = notifiers.channel(name)
        typed = cls.verification is Verification.MESSAGE
        found.append(
            Channel(
                name,
                cls.verification,
                cls.address_field if typed else None,
                cls.address_input if typed else None,
            )
        )
    return found


def blank(params: Params, offered: list[Channel], *, language: str) -> SubscribeForm:
    """The form as first shown: the rule from ``params`` (a search's), the rest defaults."""
    return SubscribeForm(
        rule=read_rule(params, require=False),
        name="",
        channel=offered[0].name if offered else "",
        addresses={},
        language=language,
        cadence=CADENCES[0],
    )


def read(params: Params, offered: list[Channel], *, default_name: str) -> SubscribeForm:
    """Read a posted form; ``given`` is set only when every field and the rule are valid."""
    form = SubscribeForm(
        rule=read_rule(params, require=True),
        name=_first(params, "name"),
        channel=_first(params, "channel"),
        addresses={
            c.address_field: _first(params, c.address_field) for c in offered if c.address_field
        },
        language=_first(params, "language"),
        cadence=_first(params, "cadence"),
    )
    chosen = next((c for c in offered if c.name == form.channel), None)
    _check_fields(form, chosen)
    if not form.errors and form.rule.ok and chosen is not None:
        _validate(form, chosen, default_name)
    return form


def _validate(form: SubscribeForm, chosen: Channel, default_name: str) -> None:
    """Build the ``SubscriptionInput`` (``form.given``), or note what the model refused."""
    data: dict[str, Any] = {
        "name": form.name or default_name,
        "language": form.language,
        "cadence": form.cadence,
        "rule": form.rule.spec.model_dump(mode="json", exclude_defaults=True),
    }
    if chosen.verification is Verification.CONNECT:
        form.connect = (chosen.name,)  # the feed channel holds it until the chat connects
    else:
        data["channels"] = [chosen.name]
    if chosen.address_field:
        data["addresses"] = {chosen.name: form.addresses[chosen.address_field]}
    try:
        form.given = SubscriptionInput.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            where = str(error["loc"][0]) if error["loc"] else ""
            if where == "name":
                form.errors["name"] = Problem.NAME
            elif chosen.address_field:  # the address validator speaks for the whole input
                form.errors[chosen.address_field] = Problem.ADDRESS_INVALID


def default_name(rule: RuleForm, kinds: Mapping[str, str], *, fallback: str) -> str:
    """A name made of the rule: its words, kinds, publishers and tags."""
    spec = rule.spec
    parts = [spec.query.strip(), *(str(kinds.get(k, k)) for k in spec.kinds)]
    parts += [*spec.publishers, *spec.tags]
    text = " · ".join(part for part in parts if part)
    if len(text) > DEFAULT_NAME_LENGTH:
        text = text[: DEFAULT_NAME_LENGTH - 1].rstrip() + "…"
    return text or fallback


def _check_fields(form: SubscribeForm, chosen: Channel | None) -> None:
    """The checks the page can say in the visitor's language, before the model's own."""
    if len(form.name) > MAX_NAME_LENGTH:
        form.errors["name"] = Problem.NAME
    if chosen is None:
        form.errors["channel"] = Problem.CHANNEL
    elif chosen.address_field:
        address = form.addresses.get(chosen.address_field, "")
        if not address:
            form.errors[chosen.address_field] = Problem.ADDRESS_MISSING
        elif len(address) > MAX_ADDRESS_LENGTH or not _valid(chosen.name, address):
            form.errors[chosen.address_field] = Problem.ADDRESS_INVALID
    if form.language not in LANGUAGES:
        form.errors["language"] = Problem.LANGUAGE
    if form.cadence not in CADENCES:
        form.errors["cadence"] = Problem.CADENCE


def _valid(channel: str, address: str) -> bool:
    try:
        notifiers.channel(channel).check_address(address)
    except ValueError:
        return False
    return True


def _first(params: Params, name: str) -> str:
    values = params.getlist(name)
    return str(values[0]).strip() if values else ""
