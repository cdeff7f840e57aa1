"""Segments: each contact's memberships, members by segment, and the definitions filled

``contacts.segments`` lists the segments a customer is in (the processor compares it with a
fresh evaluation to find entries and exits); ``segment_members`` holds the same memberships by
segment, for counts, previews and audiences; ``segment_versions`` records the definition of
each segment whose members were last filled in whole (a new or edited definition is filled
without posting entries and exits).

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(
            sa.Column("segments", JSON, nullable=False, server_default=sa.text("'[]'"))
        )
    op.create_table(
        "segment_members",
        sa.Column("segment_id", sa.String(length=64), nullable=False),
        sa.Column("contact_id", sa.String(length=64), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("segment_id", "contact_id", name=op.f("pk_segment_members")),
    )
    op.create_index("ix_segment_members_contact_id", "segment_members", ["contact_id"])
    op.create_table(
        "segment_versions",
        sa.Column("segment_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=16), nullable=False),
        sa.Column("filled_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("segment_id", name=op.f("pk_segment_versions")),
    )


def downgrade() -> None:
    op.drop_table("segment_versions")
    op.drop_index("ix_segment_members_contact_id", table_name="segment_members")
    op.drop_table("segment_members")
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("segments")
