"""deliveries are claimed in (due_at, id) order: the claim index takes id as its last column

Many deliveries share a due time (a broadcast's sends, the sends a rate limit held back to
the same window). Ordered by ``due_at`` alone, PostgreSQL claimed those in whatever order
their rows lay; ordered by ``due_at`` then ``id`` (ids sort by creation time) they go first
come, first served, and this index gives that order without a sort.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.create_index("ix_deliveries_status_due_at_id", ["status", "due_at", "id"])
        batch.drop_index("ix_deliveries_status_due_at")


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.create_index("ix_deliveries_status_due_at", ["status", "due_at"])
        batch.drop_index("ix_deliveries_status_due_at_id")
