"""send_hits: an index on ``at``, for the sweep of hits no window reaches any more

A claim deletes the old hits of the buckets it counts; a bucket per contact (``key:
contact``) is seldom counted again, so its hits stayed. Each dispatcher now deletes, at most
once a minute, every hit older than the longest configured window: one range of this index.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_send_hits_at", "send_hits", ["at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_send_hits_at", table_name="send_hits")
