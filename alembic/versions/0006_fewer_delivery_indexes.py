"""Drop two delivery indexes that no query needs

Every claim and every result rewrites a delivery row with a new status, so each index on
``deliveries`` takes a new entry each time. ``ix_deliveries_vendor_ref`` served no lookup
(awaiting deliveries are found by status and due time), and the frequency-cap query finds a
contact's deliveries through ``ix_deliveries_contact_id_id`` as well as through
``ix_deliveries_contact_id_sent_at``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_index(op.f("ix_deliveries_vendor_ref"))
        batch.drop_index("ix_deliveries_contact_id_sent_at")


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.create_index("ix_deliveries_contact_id_sent_at", ["contact_id", "sent_at"])
        batch.create_index(op.f("ix_deliveries_vendor_ref"), ["vendor_ref"], unique=False)
