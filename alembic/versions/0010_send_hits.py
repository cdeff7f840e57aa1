"""send_hits: the sends rate-limited channels let through, for their sliding windows

A channel's rate limit (policies.yaml ``rate_limits``, or what its adapter declares) counts the
sends of its bucket within the window, on every worker. The deliveries table cannot answer
that cheaply (no index on channel and sent time, and a staff member's bucket is not a column
of it); this narrow table can, and stays small: the dispatcher deletes a bucket's hits once
they are older than its longest window.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "send_hits",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("bucket", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_send_hits")),
    )
    op.create_index("ix_send_hits_bucket_at", "send_hits", ["bucket", "at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_send_hits_bucket_at", table_name="send_hits")
    op.drop_table("send_hits")
