"""contacts.last_seen_at and last_message_at

When the contact's latest event of any kind happened, and its latest ``chat.message``: read by
templates as ``contact.last_seen_at`` and ``contact.last_message_at``. Existing contacts start
with none; their next event sets them.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_message_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("last_message_at")
        batch.drop_column("last_seen_at")
