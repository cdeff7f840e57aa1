"""contacts.monthly_spend: spend per calendar month (policies' timezone), the last 13 months

Tactics such as monthly VIP tiering read last month's spend; keeping it on the contact makes it
as cheap to read as the other stats.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(
            sa.Column("monthly_spend", json, nullable=False, server_default=sa.text("'{}'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("monthly_spend")
