"""The schema of the last release made before migrations: revision 0001.

A frozen copy, not the models: the models move on, this stays as that release
made its tables (``SQLModel.metadata.create_all``), so that revision 0001 and a
database that release made are the same thing. ``agent.db`` also uses it to
bring a database made before migrations up to 0001 before stamping it.
"""

from __future__ import annotations

import sqlalchemy as sa

from agent.models import UtcDateTime


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer, primary_key=True)


def _text(name: str, *, nullable: bool = False, index: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String, nullable=nullable, index=index)


def _when(name: str, *, nullable: bool = True, index: bool = False) -> sa.Column[object]:
    return sa.Column(name, UtcDateTime(), nullable=nullable, index=index)


def _int(name: str, *, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.Integer, nullable=nullable)


def _ref(name: str, target: str) -> sa.Column[int]:
    return sa.Column(name, sa.Integer, sa.ForeignKey(target), nullable=False, index=True)


def _json(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.JSON, nullable=nullable)


def _random(name: str, *, unique: bool = False) -> sa.Column[str]:
    # Added after the first release: nullable, filled in by ``agent.db``.
    return sa.Column(name, sa.String, nullable=True, unique=unique, index=unique)


def metadata() -> sa.MetaData:
    """A new ``MetaData`` holding the previous release's six tables."""
    schema = sa.MetaData()
    _items(schema)
    _sources(schema)
    _subscriptions(schema)
    _suppressions(schema)
    return schema


def _items(schema: sa.MetaData) -> None:
    sa.Table("item", schema, _id(), _text("source", index=True), _text("key"),
             _text("kind", index=True), _text("content_hash"), _json("data"),
             _when("first_seen_at", nullable=False, index=True),
             _when("last_seen_at", nullable=False), _when("changed_at", nullable=False),
             _when("deadline", index=True), _when("closing_soon_for"),
             sa.UniqueConstraint("source", "key"))  # fmt: skip
    sa.Table("event", schema, _id(),
             _ref("item_id", "item.id"),
             _text("type"), _text("dedup_key"), _json("changes"), _json("snapshot"),
             _when("created_at", nullable=False, index=True),
             sa.UniqueConstraint("item_id", "dedup_key"))  # fmt: skip


def _sources(schema: sa.MetaData) -> None:
    sa.Table("source_state", schema, _text("name"), _text("cursor", nullable=True),
             sa.Column("baseline_done", sa.Boolean, nullable=False),
             _when("last_attempt_at"), _when("last_success_at"), _when("last_change_at"),
             _text("last_error", nullable=True),
             sa.Column("consecutive_failures", sa.Integer, nullable=False), _when("failing_since"),
             sa.Column("items_seen", sa.Integer, nullable=False),
             sa.Column("last_item_count", sa.Integer, nullable=False),
             sa.Column("last_skipped", sa.Integer, nullable=True),
             sa.PrimaryKeyConstraint("name"))  # fmt: skip


def _subscriptions(schema: sa.MetaData) -> None:
    sa.Table("subscription", schema, _id(), _random("public_id", unique=True),
             _random("link_secret"), sa.Column("name", sa.String, nullable=False, unique=True),
             _json("rule"), _json("compiled"), _json("channels", nullable=True),
             _json("addresses", nullable=True), _text("language"), _text("cadence"),
             _json("cadences", nullable=True), _text("timezone", nullable=True),
             _int("digest_hour", nullable=True), _text("quiet_hours", nullable=True),
             sa.Column("feed_token", sa.String, nullable=False, unique=True, index=True),
             sa.Column("active", sa.Boolean, nullable=False),
             _when("created_at", nullable=False), _when("updated_at", nullable=False),
             sqlite_autoincrement=True)  # fmt: skip
    sa.Table("delivery", schema, _id(), _random("message_token", unique=True),
             _ref("subscription_id", "subscription.id"), _ref("event_id", "event.id"),
             _text("channel"), _text("status", index=True), _text("lease_owner", nullable=True),
             _int("attempts"), _when("next_attempt_at", nullable=False, index=True),
             _when("created_at", nullable=False), _when("sent_at"),
             _text("last_error", nullable=True),
             sa.Column("rolled_over", sa.Boolean, nullable=True), _text("receipt", nullable=True),
             _json("reasons", nullable=True),
             sa.UniqueConstraint("subscription_id", "event_id", "channel"),
             sqlite_autoincrement=True)  # fmt: skip


def _suppressions(schema: sa.MetaData) -> None:
    sa.Table("suppression", schema, _id(), _text("channel"), _text("address"), _text("reason"),
             _when("created_at", nullable=False), _when("lifted_at"),
             sa.UniqueConstraint("channel", "address"))  # fmt: skip
