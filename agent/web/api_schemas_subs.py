"""The JSON API's subscription bodies: made, shown, changed (see ``api_schemas``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

import notifiers
from agent.rules import RuleSpec
from agent.schedule import Cadence
from agent.subscriptions import MAX_NAME_LENGTH, Language, SubscriptionInput
from agent.web.api_schemas import PageInfo, PageQuery
from agent.web.signup import NextStep
from notifiers.base import Verification

#: Channels whose chat connects itself through a link (a bot's deep link).
SELF_CONNECTING = [
    name for name, cls in notifiers.CHANNELS.items() if cls.verification is Verification.CONNECT
]
_CONNECT_ENUM: list[JsonValue] = [*SELF_CONNECTING]


class FeedLinks(BaseModel):
    """A subscription's private feeds (its alerts on a feed channel, its deadlines)."""

    atom: str
    rss: str
    ics: str


class SubscriptionOut(BaseModel):
    """A subscription as its subscriber sees it."""

    name: str
    active: bool
    #: Made on the web, and its address has not confirmed yet: nothing is sent.
    awaiting_confirmation: bool
    channels: list[str]
    #: Each addressed channel's address, by channel.
    addresses: dict[str, str]
    language: Language
    cadence: Cadence
    cadences: dict[str, Cadence]
    timezone: str | None
    digest_hour: int | None
    quiet_hours: str | None
    rule: RuleSpec
    created_at: datetime
    updated_at: datetime
    feeds: FeedLinks


class AdminSubscriptionOut(SubscriptionOut):
    """A subscription as admins see it: with its id and organisation."""

    id: int
    organisation_id: int | None


class AdminSubscriptionList(BaseModel):
    """A page of subscriptions, newest first."""

    subscriptions: list[AdminSubscriptionOut]
    page: PageInfo


class AdminSubscriptionQuery(PageQuery):
    """Which subscriptions to list."""

    active: bool | None = Field(default=None, description="Only active (true) or paused (false).")


class NewSubscription(SubscriptionInput):
    """A subscription to make, as ``SubscriptionInput`` takes it; the name may be left out.

    A channel that connects itself (Telegram) goes in ``connect``, not in
    ``channels``: the answer then has its deep links, and the chat that opens
    one is connected. An address that must confirm gets a confirmation message.
    """

    #: Left out: made from the rule. Either way, a name taken already gets ``(2)``...
    name: str = Field(default="", max_length=MAX_NAME_LENGTH)
    connect: list[str] = Field(default=[], json_schema_extra={"items": {"enum": _CONNECT_ENUM}})

    @field_validator("connect")
    @classmethod
    def _self_connecting(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in SELF_CONNECTING:
                raise ValueError(f"{name!r} does not connect itself; these do: {SELF_CONNECTING}")
        return list(dict.fromkeys(value))

    @field_validator("channels")
    @classmethod
    def _no_typed_chats(cls, value: list[str]) -> list[str]:
        # A chat id typed by anyone would send alerts to a chat that never asked for them.
        for name in value:
            if name in SELF_CONNECTING:
                raise ValueError(f"the {name} channel connects itself: name it in 'connect'")
        return value


class SignUpOut(BaseModel):
    """A subscription just made, and what its subscriber does next."""

    next_step: NextStep
    subscription: SubscriptionOut
    #: ``manage``, ``atom``, ``rss``, ``ics``, ``telegram_private``, ``telegram_group``:
    #: those that apply. The last part of the ``manage`` link is the subscriber's token.
    links: dict[str, str]


class SubscriptionPatch(BaseModel):
    """The fields to change; those left out (or null) stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        description="A new name; 409 if another subscription has it.",
    )
    rule: RuleSpec | None = Field(default=None, description="The whole new rule.")
    cadence: Cadence | None = None
    language: Language | None = None
    active: bool | None = Field(
        default=None,
        description="false pauses it; true resumes it (409 before its address confirmed).",
    )
