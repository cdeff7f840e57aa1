"""Contact merges: one profile per person

When an event links identities held by two contacts (a WeCom customer's remark mobile is a
shop customer's phone), the younger contact merges into the older one
(``smr.services.merging``). The merged contact stays as a tombstone, ``kind = 'merged'``,
pointing at the survivor through ``merged_into``, so that its id still finds the person.
``contact_merges`` records each merge for the run log: who merged into whom, by which
identity kinds, on which event, and the rows that moved.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("merged_into", sa.String(length=64), nullable=True))
    op.create_table(
        "contact_merges",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("survivor_id", sa.String(length=64), nullable=False),
        sa.Column("merged_id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=32), nullable=True),
        sa.Column("by", JSON, nullable=False),
        sa.Column("moved", JSON, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_merges")),
    )
    op.create_index("ix_contact_merges_survivor_id", "contact_merges", ["survivor_id"])
    op.create_index("ix_contact_merges_merged_id", "contact_merges", ["merged_id"], unique=True)
    op.create_index("ix_contact_merges_event_id", "contact_merges", ["event_id"])
    op.create_index(
        "ix_contacts_merged_into",
        "contacts",
        ["merged_into"],
        postgresql_where=sa.text("merged_into IS NOT NULL"),
        sqlite_where=sa.text("merged_into IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_contacts_merged_into", table_name="contacts")
    op.drop_table("contact_merges")
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("merged_into")
