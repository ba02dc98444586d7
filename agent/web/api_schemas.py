"""The JSON API's bodies: what handlers validate and return, and what OpenAPI documents.

Every answer is one of these models (or those of ``api_schemas_subs``, for
subscriptions) dumped as JSON, and ``agent.web.openapi`` publishes their
``model_json_schema``: the document cannot drift from the code. Requests are
validated with the project's own models where one exists (``RuleSpec``,
``SubscriptionInput``); the rest are here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, WithJsonSchema, field_validator

import notifiers
from agent.health import ServiceStatus, SourceStatus
from agent.models import Change, DeliveryStatus, EventType, Kind

#: The largest page a list gives.
MAX_PER_PAGE = 100


#: A channel's name: one of ``notifiers.CHANNELS`` (an enum in the schema).
ChannelName = Annotated[
    str, WithJsonSchema({"type": "string", "enum": [*notifiers.CHANNELS]}, mode="validation")
]


class FieldError(BaseModel):
    """One thing wrong with a request: the field, what is wrong, and where in a query."""

    #: The field (``query``, ``rule.amount_min``, ``per_page``); ``""``: the whole request.
    field: str
    message: str
    #: The 0-based character in the rule's query where the error is, for query errors.
    position: int | None = None


class ErrorBody(BaseModel):
    """Every error answer: a message, and the fields at fault (empty when none is)."""

    error: str
    errors: list[FieldError] = []


class PageQuery(BaseModel):
    """Which page of a list: ``page`` from 1, ``per_page`` at most 100."""

    page: int = Field(default=1, ge=1, le=10_000, description="The page, from 1.")
    per_page: int = Field(
        default=20, ge=1, le=MAX_PER_PAGE, description="How many on a page (at most 100)."
    )


class PageInfo(BaseModel):
    """Where a page is in its list, and the links to its neighbours."""

    page: int
    per_page: int
    #: How many there are in all (with ``limited``: among the items searched).
    total: int | None
    next: str | None = None
    previous: str | None = None
    #: Only the most recently seen items were searched: older ones were left out.
    limited: bool = False


class ItemOut(BaseModel):
    """A publication as the service last saw it."""

    id: int
    source: str
    key: str
    kind: Kind
    title: str
    description: str
    publisher: str | None
    publishing_unit: str | None
    amount: float | None
    currency: str | None
    budget_base: float | None
    published_at: datetime | None
    deadline: datetime | None
    status: str | None
    #: The publication on its source's site.
    url: str | None
    budget_codes: list[str]
    tags: list[str]
    #: When this service first saw it (lists are newest first by publication date, else this).
    first_seen_at: datetime
    #: Its page on this site, with its history.
    web_url: str


class ItemList(BaseModel):
    """A page of publications, newest first."""

    items: list[ItemOut]
    page: PageInfo


class HistoryEntry(BaseModel):
    """Something that happened to a publication: new, updated, its deadline moved..."""

    id: int
    type: EventType
    at: datetime
    #: The fields that changed, each with its value before and after.
    changes: dict[str, Change]


class ItemDetail(ItemOut):
    """A publication with its history, oldest event first."""

    history: list[HistoryEntry]


class SourceOut(BaseModel):
    """One configured source's health (``agent.health``), without its error texts."""

    name: str
    status: SourceStatus
    ok: bool
    #: Since when it fails or is stale.
    since: datetime | None
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_change_at: datetime | None
    consecutive_failures: int
    last_item_count: int
    last_skipped: int


class SourceList(BaseModel):
    """Every configured source, and the verdict ``/health`` gives."""

    status: ServiceStatus
    sources: list[SourceOut]


class DeliveryQuery(PageQuery):
    """Which deliveries to list."""

    status: DeliveryStatus | None = Field(default=None, description="Only in this state.")
    channel: ChannelName | None = Field(default=None, description="Only on this channel.")
    subscription: int | None = Field(default=None, description="Only this subscription's (id).")

    @field_validator("channel")
    @classmethod
    def _known_channel(cls, value: str | None) -> str | None:
        if value is not None and value not in notifiers.CHANNELS:
            raise ValueError(
                f"no channel {value!r}: the channels are {', '.join(notifiers.CHANNELS)}"
            )
        return value


class DeliveryOut(BaseModel):
    """One alert for one subscription on one channel: the outbox row."""

    id: int
    subscription_id: int
    subscription: str
    channel: str
    status: DeliveryStatus
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None
    last_error: str | None
    #: What the channel gave back (an e-mail Message-ID, a Telegram message id).
    receipt: str | None
    #: Held back by the hourly cap into the next digest.
    rolled_over: bool
    event_id: int
    event_type: EventType
    item_id: int
    item_title: str


class ReasonOut(BaseModel):
    """One clause of the rule that matched, and what it found."""

    clause: str
    field: str | None = None
    term: str | None = None
    matched: str | None = None
    value: Any = None


class DeliveryDetail(DeliveryOut):
    """A delivery with the reasons its subscription's rule matched."""

    reasons: list[ReasonOut]
    #: The same reasons as the alert said them, in the subscription's language.
    explained: list[str]


class DeliveryList(BaseModel):
    """A page of deliveries, newest first."""

    deliveries: list[DeliveryOut]
    page: PageInfo


class PollStarted(BaseModel):
    """A poll of a source has started; its result shows in ``/api/v1/sources``."""

    source: str
    message: str
