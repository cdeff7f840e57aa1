"""contacts.total_spent holds 10^10 orders of the largest amount; events.occurred_at_source

An order's total is at most 100,000,000 (see the README's "Bounds"); numeric(14, 2) held ten
thousand of those, so one customer's orders could overflow it and make every later order of
that customer fail. numeric(20, 2) holds ten billion, more than ``contacts.orders`` counts.
PostgreSQL widens a numeric's precision without rewriting the table.

``occurred_at_source`` says whether ``occurred_at`` is the time the sender gave (``sent``) or,
the sender giving none, the time SMR received the event (``received``).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.alter_column(
            "total_spent",
            existing_type=sa.Numeric(14, 2),
            type_=sa.Numeric(20, 2),
            existing_nullable=False,
        )
    with op.batch_alter_table("events") as batch:
        batch.add_column(
            sa.Column(
                "occurred_at_source",
                sa.String(8),
                nullable=False,
                server_default=sa.text("'sent'"),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_column("occurred_at_source")
    with op.batch_alter_table("contacts") as batch:
        batch.alter_column(
            "total_spent",
            existing_type=sa.Numeric(20, 2),
            type_=sa.Numeric(14, 2),
            existing_nullable=False,
        )
