"""Index only the runs an event started

``ix_runs_trigger_event_id`` finds the runs an event started. A run started by a cron slot has
no trigger event, and every one of them took an entry for NULL: a fan-out to a million
contacts wrote a million entries no query reads. The index now covers non-NULL keys only,
which is all an equality lookup needs.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOT_NULL = sa.text("trigger_event_id IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_runs_trigger_event_id", table_name="runs")
    op.create_index(
        "ix_runs_trigger_event_id",
        "runs",
        ["trigger_event_id"],
        postgresql_where=NOT_NULL,
        sqlite_where=NOT_NULL,
    )


def downgrade() -> None:
    op.drop_index("ix_runs_trigger_event_id", table_name="runs")
    op.create_index("ix_runs_trigger_event_id", "runs", ["trigger_event_id"])
