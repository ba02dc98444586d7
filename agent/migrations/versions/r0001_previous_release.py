"""The schema of the last release before migrations (7246bd4): six tables.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

from alembic import op

from agent.migrations import baseline

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create the previous release's tables, as that release's ``create_all`` did."""
    baseline.metadata().create_all(op.get_bind(), checkfirst=False)


def downgrade() -> None:
    """Drop them all: the database is empty again."""
    baseline.metadata().drop_all(op.get_bind())
