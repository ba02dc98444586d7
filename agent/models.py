"""The values that flow through the pipeline, and the tables that keep them.

``Item`` is what a watcher yields, one model for every source. ``Event`` is what
change detection makes of it. The ``table=True`` classes are the store; only
``agent.store``, ``agent.outbox`` and ``agent.subscriptions`` write them.

All datetimes are timezone-aware UTC inside the program; ``UtcDateTime``
makes SQLite (which forgets the zone) give them back that way.
"""

import hashlib
import json
import re
import secrets
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlmodel import Column, SQLModel, UniqueConstraint
from sqlmodel import Field as SQLField


class Kind(StrEnum):
    """What sort of publication an item is."""

    TENDER = "tender"
    EXEMPTION = "exemption"
    CALL_FOR_BIDS = "call_for_bids"
    SUPPORT_CRITERIA = "support_criteria"
    BUDGET_CHANGE = "budget_change"
    BUDGET_ITEM = "budget_item"
    CONTRACT = "contract"
    FEED_ENTRY = "feed_entry"


class EventType(StrEnum):
    """What happened to an item, as change detection saw it."""

    NEW = "new"
    UPDATED = "updated"
    STATUS_CHANGED = "status_changed"
    DEADLINE_CHANGED = "deadline_changed"
    CLOSING_SOON = "closing_soon"
    APPROVED = "approved"


class DeliveryStatus(StrEnum):
    """Where a delivery stands in the outbox."""

    PENDING = "pending"
    #: Claimed by a dispatch run; its lease ends at ``next_attempt_at``.
    SENDING = "sending"
    SENT = "sent"
    #: Failed (the reason in ``last_error``); tried again at ``next_attempt_at``.
    RETRYING = "retrying"
    #: Its address is suppressed on its channel (``Suppression``): held, not sent.
    SUPPRESSED = "suppressed"
    #: Out of attempts, or failed for good: visible, and replayable.
    DEAD = "dead"
    #: Its subscription was unsubscribed or removed before it went out.
    CANCELLED = "cancelled"


#: Item fields left out of the content hash: they identify, or are bookkeeping.
_UNHASHED = frozenset({"source", "key", "raw"})

#: Control characters Python counts as white space (VT, FF, the C0 separators, NEL):
#: a Word line break or a page break between two words must keep them apart.
_SPACE_LIKE = "\x0b\x0c\x1c-\x1f\x85"
#: Characters no reader should get and XML 1.0 (the feed) forbids or discourages:
#: C0 controls but tab, LF and CR; DEL and C1; lone surrogates; U+FFFE and U+FFFF.
UNWANTED_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_SPACE = re.compile(f"[{_SPACE_LIKE}]")
_URL_BREAKS = re.compile("[\t\n\r]")
#: The only link schemes a source may give readers; ``javascript:``, ``data:`` and
#: the rest would be live links in e-mail, Telegram and the feed.
WEB_SCHEMES = frozenset({"http", "https"})


def clean_text(value: Any) -> Any:
    """Return ``value`` with unwanted characters removed from every string in it.

    Space-like controls become a space; lists, tuples and dicts are cleaned
    recursively (keys too). Anything else is returned as it is.
    """
    if isinstance(value, str):
        # Nearly always nothing to do, and no copy; every unwanted character is unprintable.
        if value.isprintable() or UNWANTED_CHARACTERS.search(value) is None:
            return value
        return UNWANTED_CHARACTERS.sub("", _SPACE.sub(" ", value))
    if isinstance(value, list | tuple):
        return type(value)(clean_text(part) for part in value)
    if isinstance(value, dict):
        return {clean_text(k): clean_text(v) for k, v in value.items()}
    return value


def web_link(url: str | None) -> str | None:
    """Return ``url`` trimmed if it is an absolute http(s) link with a host, else None."""
    if url is None:
        return None
    # Browsers drop tabs and line breaks anywhere in a URL; so do we, before judging it.
    url = _URL_BREAKS.sub("", url.strip())
    try:
        parts = urlsplit(url)
    except ValueError:  # an invalid IPv6 host, a bad port
        return None
    return url if parts.scheme.lower() in WEB_SCHEMES and parts.hostname else None


class Item(BaseModel):
    """One publication from one source, normalised.

    ``key`` is the source's own stable identity (never a row counter);
    ``raw`` keeps the payload as received. Amounts are in ``currency`` units
    (shekels, not thousands). ``budget_base`` is the programme's budget before
    a budget change, when known, so rules can ask for a percentage.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = ""
    kind: Kind
    key: str = Field(min_length=1)
    title: str
    description: str = ""
    publisher: str | None = None
    publishing_unit: str | None = None
    amount: float | None = None
    currency: str | None = None
    budget_base: float | None = None
    published_at: datetime | None = None
    deadline: datetime | None = None
    status: str | None = None
    url: str | None = None
    budget_codes: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    raw: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _clean(cls, data: Any) -> Any:
        # Once, here, for every channel: a NUL from a source made the feed answer 500.
        # ``raw`` stays as received: it is evidence, stored as escaped JSON, never shown.
        if not isinstance(data, dict):
            return data
        return {name: value if name == "raw" else clean_text(value) for name, value in data.items()}

    @field_validator("url")
    @classmethod
    def _web_link(cls, value: str | None) -> str | None:
        # A link that is not http(s) is dropped, not the item: the alert still matters.
        return web_link(value)

    @field_validator("published_at", "deadline")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("datetime must be timezone-aware")
        return value.astimezone(UTC) if value is not None else None

    def content(self) -> dict[str, Any]:
        """Return the fields that count as content, JSON-ready."""
        return self.model_dump(mode="json", exclude=set(_UNHASHED))

    def content_hash(self) -> str:
        """Return a stable hash of the content, to tell an update from a re-read."""
        text = json.dumps(self.content(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()


class Change(BaseModel):
    """One field's value before and after an update."""

    model_config = ConfigDict(frozen=True)

    before: Any
    after: Any

    @field_validator("before", "after")
    @classmethod
    def _clean(cls, value: Any) -> Any:
        # Values come from cleaned items, but events stored before items were
        # cleaned still hold control characters that would break the feed.
        return clean_text(value)


class Event(BaseModel):
    """Something that happened to an item: the unit that rules match."""

    model_config = ConfigDict(frozen=True)

    type: EventType
    item: Item
    changes: dict[str, Change] = Field(default_factory=dict)
    #: Makes the event unique per item: a replayed poll cannot create it twice.
    dedup_key: str


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """Store aware datetimes as UTC and give them back aware, whatever the database."""

    impl = sa.types.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


def _utc_column(*, nullable: bool = True, index: bool = False) -> Any:
    return SQLField(default=None, sa_column=Column(UtcDateTime(), nullable=nullable, index=index))


def _json_column() -> Any:
    return SQLField(default_factory=dict, sa_column=Column(sa.JSON, nullable=False))


def new_public_id() -> str:
    """A random identity for the outside world (22 URL-safe characters), never reused."""
    return secrets.token_urlsafe(16)


def new_secret() -> str:
    """A random per-row secret that signed links are bound to."""
    return secrets.token_urlsafe(24)


def _random_column(factory: Any, *, unique: bool = False) -> Any:
    # Nullable so that ``agent.db`` can add it to an older database (and fill
    # it in); the Python default fills it on every insert, ORM or Core. A
    # unique column gets a unique index, which ``agent.db`` can add later too.
    column = Column(sa.String, nullable=True, unique=unique, index=unique, default=factory)
    return SQLField(default_factory=factory, sa_column=column)


class StoredItem(SQLModel, table=True):
    """The last known state of an item, keyed by (source, key)."""

    __tablename__ = "item"
    __table_args__ = (UniqueConstraint("source", "key"),)

    id: int | None = SQLField(default=None, primary_key=True)
    source: str = SQLField(index=True)
    key: str
    kind: str = SQLField(index=True)
    content_hash: str
    data: dict[str, Any] = _json_column()
    first_seen_at: datetime = _utc_column(nullable=False, index=True)
    last_seen_at: datetime = _utc_column(nullable=False)
    changed_at: datetime = _utc_column(nullable=False)
    deadline: datetime | None = _utc_column(index=True)
    #: The deadline a closing-soon event was last emitted for (once per deadline).
    closing_soon_for: datetime | None = _utc_column()

    def to_item(self) -> Item:
        """Rebuild the validated item from its stored JSON."""
        return Item.model_validate(self.data)


class StoredEvent(SQLModel, table=True):
    """An event that change detection emitted; deliveries point at it."""

    __tablename__ = "event"
    __table_args__ = (UniqueConstraint("item_id", "dedup_key"),)

    id: int | None = SQLField(default=None, primary_key=True)
    item_id: int = SQLField(foreign_key="item.id", index=True)
    type: str
    dedup_key: str
    changes: dict[str, Any] = _json_column()
    #: The item as it was when the event happened, for rendering and backtests.
    snapshot: dict[str, Any] = _json_column()
    created_at: datetime = _utc_column(nullable=False, index=True)

    def to_event(self) -> Event:
        """Rebuild the validated event."""
        return Event(
            type=EventType(self.type),
            item=Item.model_validate(self.snapshot),
            changes={k: Change.model_validate(v) for k, v in self.changes.items()},
            dedup_key=self.dedup_key,
        )


class SourceState(SQLModel, table=True):
    """Health and cursor of one configured source."""

    __tablename__ = "source_state"

    name: str = SQLField(primary_key=True)
    cursor: str | None = None
    baseline_done: bool = False
    last_attempt_at: datetime | None = _utc_column()
    last_success_at: datetime | None = _utc_column()
    #: The last successful poll that brought a new or changed item (or the baseline).
    last_change_at: datetime | None = _utc_column()
    last_error: str | None = None
    consecutive_failures: int = 0
    #: When the current run of failures began; ``None`` while the source answers.
    failing_since: datetime | None = _utc_column()
    items_seen: int = 0
    last_item_count: int = 0
    #: Malformed records the last successful poll left out; ``None`` before any was
    #: counted (nullable, so an older database gains the column).
    last_skipped: int | None = None
    #: Turned off from the admin console (the scheduler skips it) and by whom;
    #: ``None`` while it runs as the configuration says.
    disabled_at: datetime | None = _utc_column()
    disabled_by: str | None = None
    #: When the admins were told this run of failures (``agent.admin_alerts``);
    #: ``None`` while no alert stands, so exactly one process claims the next.
    alerted_at: datetime | None = _utc_column()


class Subscription(SQLModel, table=True):
    """A person's or team's standing request: a rule, channels and a cadence.

    Links name it by ``public_id``, never by ``id``: SQLite gives a deleted
    row's id to the next row unless the table is AUTOINCREMENT, which only
    new databases get.
    """

    # AUTOINCREMENT: a new database never hands a deleted row's id out again.
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = SQLField(default=None, primary_key=True)
    #: Random and never reused: what signed links name (``agent.links``).
    public_id: str | None = _random_column(new_public_id, unique=True)
    #: Signed links are bound to it; a new value revokes every link given out.
    link_secret: str | None = _random_column(new_secret)
    name: str = SQLField(unique=True)
    #: The rule: structured fields and query string, as ``agent.rules.RuleSpec`` JSON.
    rule: dict[str, Any] = _json_column()
    #: The compiled rule tree, so a restart does not re-parse (``agent.rules``).
    compiled: dict[str, Any] = _json_column()
    channels: list[str] = SQLField(default_factory=list, sa_column=Column(sa.JSON))
    #: Where each addressed channel delivers, by channel name (an e-mail address, a
    #: chat id); a feed channel is addressed by ``feed_token`` instead.
    addresses: dict[str, str] = SQLField(
        default_factory=dict, sa_column=Column(sa.JSON, nullable=True)
    )
    language: str = "he"
    #: A ``Cadence``: how often alerts go out, on every channel without its own.
    cadence: str = "immediate"
    #: Per-channel cadences that differ from ``cadence`` (``{"telegram": "immediate"}``).
    cadences: dict[str, str] = SQLField(
        default_factory=dict, sa_column=Column(sa.JSON, nullable=True)
    )
    #: The subscriber's time zone and digest hour; ``None`` takes the ``[agent]`` defaults.
    timezone: str | None = None
    digest_hour: int | None = None
    #: ``22-07``: immediate alerts wait out these local hours (``agent.schedule``).
    quiet_hours: str | None = None
    feed_token: str = SQLField(unique=True, index=True)
    active: bool = True
    #: Made on the web with an address that has not confirmed yet (double opt-in):
    #: inactive, and nothing is sent to the address until it confirms.
    awaiting_confirmation: bool | None = None
    #: The organisation that shares it (``agent.accounts``); ``None``: a person's own.
    organisation_id: int | None = SQLField(default=None, foreign_key="organisation.id", index=True)
    created_at: datetime = _utc_column(nullable=False)
    #: Bumped on every edit, so a running matcher knows to re-index the rule.
    updated_at: datetime = _utc_column(nullable=False)


class Delivery(SQLModel, table=True):
    """One alert for one subscription on one channel: the outbox row.

    Unique on (subscription, event, channel), so re-matching cannot duplicate it.
    """

    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id", "channel"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = SQLField(default=None, primary_key=True)
    #: Random and never reused: e-mail Message-IDs are made of it, so a resend
    #: of the row keeps its Message-ID and no other message ever shares it.
    message_token: str | None = _random_column(new_public_id, unique=True)
    subscription_id: int = SQLField(foreign_key="subscription.id", index=True)
    event_id: int = SQLField(foreign_key="event.id", index=True)
    channel: str
    #: A ``DeliveryStatus``: ``pending`` → ``sending`` (claimed, lease in
    #: ``next_attempt_at``) → ``sent``, or ``dead``, or ``cancelled``.
    status: str = SQLField(default=DeliveryStatus.PENDING, index=True)
    #: The dispatch run holding the lease: only it may mark the row sent.
    lease_owner: str | None = None
    attempts: int = 0
    next_attempt_at: datetime = _utc_column(nullable=False, index=True)
    created_at: datetime = _utc_column(nullable=False)
    sent_at: datetime | None = _utc_column()
    last_error: str | None = None
    #: Held back by the hourly flood cap into the next digest, which says so.
    rolled_over: bool | None = None
    #: What the channel gave back: an e-mail Message-ID, a Telegram message id.
    receipt: str | None = None
    #: Why the rule matched: the clauses and terms that hit (``agent.rules.Match``).
    reasons: list[Any] = SQLField(default_factory=list, sa_column=Column(sa.JSON))


class Suppression(SQLModel, table=True):
    """An address a channel refused for good: nothing is sent there until it is lifted."""

    __table_args__ = (UniqueConstraint("channel", "address"),)

    id: int | None = SQLField(default=None, primary_key=True)
    channel: str
    address: str
    #: What the channel said (the SMTP reply, Telegram's error).
    reason: str
    created_at: datetime = _utc_column(nullable=False)
    #: When an admin lifted it; a lifted row is history, not a block.
    lifted_at: datetime | None = _utc_column()
