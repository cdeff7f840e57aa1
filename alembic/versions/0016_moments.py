"""Moments: tasks SMR posted and the engagement (likes, comments) read back

``moment_tasks``: one row per add_moment_task SMR made (the delivery, WeCom's ``jobid``, the
``moment_id`` once made, its status and the staff who published it). ``moment_engagements``:
the likes and comments the engagement poll read from get_moment_comments, keyed like the
``moment.liked`` / ``moment.commented`` events they became (their counts per moment).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    op.create_table(
        "moment_tasks",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("jobid", sa.String(length=128), nullable=False),
        sa.Column("delivery_id", sa.String(length=32), nullable=False),
        sa.Column("moment_id", sa.String(length=128), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("published_by", json, nullable=False),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_moment_tasks")),
        sa.UniqueConstraint("jobid", name=op.f("uq_moment_tasks_jobid")),
    )
    op.create_index("ix_moment_tasks_moment_id", "moment_tasks", ["moment_id"])
    op.create_index("ix_moment_tasks_delivery_id", "moment_tasks", ["delivery_id"])
    op.create_table(
        "moment_engagements",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("moment_id", sa.String(length=128), nullable=False),
        sa.Column("staff", sa.String(length=64), nullable=False),
        sa.Column("external_userid", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_moment_engagements")),
    )
    op.create_index(
        "ix_moment_engagements_moment_id_kind", "moment_engagements", ["moment_id", "kind"]
    )


def downgrade() -> None:
    op.drop_index("ix_moment_engagements_moment_id_kind", table_name="moment_engagements")
    op.drop_table("moment_engagements")
    op.drop_index("ix_moment_tasks_delivery_id", table_name="moment_tasks")
    op.drop_index("ix_moment_tasks_moment_id", table_name="moment_tasks")
    op.drop_table("moment_tasks")
