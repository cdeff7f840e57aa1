"""Runs that reached their playbook's goal: when, and by which event

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("converted_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("converted_event_id", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("converted_event_id")
        batch.drop_column("converted_at")
