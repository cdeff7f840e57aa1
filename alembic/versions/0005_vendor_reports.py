"""deliveries.vendor_ref and the awaiting status; the 微信客服 pull cursor

A delivery a vendor accepted but has not delivered yet (a WeCom mass-send task waits for the
owner staff to confirm it) is ``awaiting``, with the vendor's id of the task in ``vendor_ref``
and the time of its next check in ``due_at``. ``wecom_kf_cursors`` keeps kf/sync_msg's cursor
per 客服 account, so each pull continues where the last one ended.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("vendor_ref", sa.String(length=128), nullable=True))
        batch.create_index(op.f("ix_deliveries_vendor_ref"), ["vendor_ref"], unique=False)
    op.create_table(
        "wecom_kf_cursors",
        sa.Column("open_kfid", sa.String(length=64), nullable=False),
        sa.Column("cursor", sa.String(length=256), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("open_kfid", name=op.f("pk_wecom_kf_cursors")),
    )


def downgrade() -> None:
    op.drop_table("wecom_kf_cursors")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_index(op.f("ix_deliveries_vendor_ref"))
        batch.drop_column("vendor_ref")
