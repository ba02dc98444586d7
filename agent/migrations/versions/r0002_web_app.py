"""The web app: logins, organisations, audit log, API keys, rate limits; three columns.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from agent.models import UtcDateTime

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

#: ``agent.throttle.Scope`` as stored: SQLAlchemy keeps an enum's member names.
_SCOPES = ("CONFIRMATION_ADDRESS", "SUBSCRIBE_CLIENT", "LOGIN_ADDRESS", "LOGIN_CLIENT")


def upgrade() -> None:
    """Add the web app's tables, then the columns that point at them."""
    _accounts()
    _organisations()
    _keys_and_limits()
    with op.batch_alter_table("source_state") as batch:
        batch.add_column(sa.Column("disabled_at", UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("disabled_by", sa.String, nullable=True))
    with op.batch_alter_table("subscription") as batch:
        batch.add_column(sa.Column("awaiting_confirmation", sa.Boolean, nullable=True))
    _add_organisation_column()
    op.create_index("ix_subscription_organisation_id", "subscription", ["organisation_id"])


def _accounts() -> None:
    op.create_table(
        "user",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String, nullable=False),
        sa.Column("password_hash", sa.String, nullable=False),
        sa.Column("is_admin", sa.Boolean, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("last_login_at", UtcDateTime(), nullable=True),
    )
    op.create_index("ix_user_email", "user", ["email"], unique=True)
    op.create_table(
        "organisation",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("slug", sa.String, nullable=False),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_organisation_slug", "organisation", ["slug"], unique=True)


def _organisations() -> None:
    op.create_table(
        "membership",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("organisation_id", sa.Integer, sa.ForeignKey("organisation.id"), nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("user.id"), nullable=False),
        sa.Column("role", sa.String, nullable=False),
        sa.UniqueConstraint("organisation_id", "user_id"),
    )
    op.create_index("ix_membership_organisation_id", "membership", ["organisation_id"])
    op.create_index("ix_membership_user_id", "membership", ["user_id"])
    op.create_table(
        "audit_entry",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("organisation_id", sa.Integer, nullable=True),
        sa.Column("subscription_id", sa.Integer, nullable=True),
        sa.Column("subject", sa.String, nullable=False),
        sa.Column("actor", sa.String, nullable=False),
        sa.Column("action", sa.String, nullable=False),
        sa.Column("before", sa.JSON, nullable=True),
        sa.Column("after", sa.JSON, nullable=True),
        sa.Column("at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_audit_entry_organisation_id", "audit_entry", ["organisation_id"])
    op.create_index("ix_audit_entry_subscription_id", "audit_entry", ["subscription_id"])


def _keys_and_limits() -> None:
    op.create_table(
        "api_key",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("digest", sa.String, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
    )
    op.create_index("ix_api_key_digest", "api_key", ["digest"], unique=True)
    op.create_table(
        "throttle_attempt",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("scope", sa.Enum(*_SCOPES, name="scope"), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_throttle_attempt_digest_at", "throttle_attempt", ["digest", "at"])


def _add_organisation_column() -> None:
    if op.get_context().dialect.name == "sqlite":
        # SQLite adds a column with its REFERENCES in place (its value starts NULL);
        # batch mode would copy the whole table to add the foreign key.
        op.execute(
            "ALTER TABLE subscription ADD COLUMN organisation_id INTEGER"
            " REFERENCES organisation (id)"
        )
    else:
        op.add_column(
            "subscription",
            sa.Column("organisation_id", sa.Integer, sa.ForeignKey("organisation.id")),
        )


def downgrade() -> None:
    """Drop what ``upgrade`` added (SQLite copies the two tables to drop their columns)."""
    op.drop_index("ix_subscription_organisation_id", "subscription")
    with op.batch_alter_table("subscription") as batch:
        batch.drop_column("organisation_id")
        batch.drop_column("awaiting_confirmation")
    with op.batch_alter_table("source_state") as batch:
        batch.drop_column("disabled_by")
        batch.drop_column("disabled_at")
    for table in ("throttle_attempt", "api_key", "audit_entry", "membership", "organisation"):
        op.drop_table(table)
    op.drop_table("user")
    sa.Enum(name="scope").drop(op.get_bind(), checkfirst=True)
