"""contacts.consents: marketing consent per channel, as the customer gave it

``{"sms": {"at", "source", "wording", "campaign", "event_id"}}``, written by
``contact.consented`` events and read by the send policy gate (``require_consent`` in
``policies.yaml``). Existing contacts have none.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(
            sa.Column("consents", json, nullable=False, server_default=sa.text("'{}'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("consents")
