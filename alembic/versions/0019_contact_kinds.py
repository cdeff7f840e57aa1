"""contacts.kind: who a run is for — a person, a customer group, or the corp itself

Schedule playbooks may target customer groups (one run per group, posting into it) or run once
per firing for the corp (Moments posts). Such runs need a subject like any run: a contact row
of kind ``group`` (id ``group:<chat_id>``, the group's chat id as its identity, its owner as
``wecom_owner``, its tags the group's tags) or the one row of kind ``corp`` (id ``corp``).
Every existing row is a person.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(length=8), nullable=False, server_default="person")
        )


def downgrade() -> None:
    # Group and corp rows stay, as persons without a phone or WeCom id: sends to them skip
    # (missing_identity). Their runs and deliveries are history the run log still reads.
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("kind")
