"""Admin alerts: when the admins were told a source keeps failing.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from agent.models import UtcDateTime

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add ``source_state.alerted_at`` (nullable: no alert stands)."""
    with op.batch_alter_table("source_state") as batch:
        batch.add_column(sa.Column("alerted_at", UtcDateTime(), nullable=True))


def downgrade() -> None:
    """Drop it again."""
    with op.batch_alter_table("source_state") as batch:
        batch.drop_column("alerted_at")
