"""durable journeys

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cron_slots",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("playbook_id", sa.String(length=64), nullable=False),
        sa.Column("playbook_version", sa.String(length=16), nullable=False),
        sa.Column("slot_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("cursor", sa.String(length=64), nullable=True),
        sa.Column("runs_started", sa.Integer(), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cron_slots")),
        sa.UniqueConstraint(
            "playbook_id", "slot_at", name=op.f("uq_cron_slots_playbook_id_slot_at")
        ),
    )
    op.create_index(
        "ix_cron_slots_status_lease_until", "cron_slots", ["status", "lease_until"], unique=False
    )
    op.create_table(
        "playbook_versions",
        sa.Column("version", sa.String(length=16), nullable=False),
        sa.Column("playbook_id", sa.String(length=64), nullable=False),
        sa.Column("file", sa.String(length=500), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_playbook_versions")),
    )
    op.create_index(
        op.f("ix_playbook_versions_playbook_id"), "playbook_versions", ["playbook_id"], unique=False
    )
    op.create_index(
        "ix_deliveries_contact_id_sent_at", "deliveries", ["contact_id", "sent_at"], unique=False
    )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("cron_slot_id", sa.String(length=32), nullable=True))
        batch.create_foreign_key(
            op.f("fk_runs_cron_slot_id_cron_slots"), "cron_slots", ["cron_slot_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_constraint(op.f("fk_runs_cron_slot_id_cron_slots"), type_="foreignkey")
        batch.drop_column("cron_slot_id")
    op.drop_index("ix_deliveries_contact_id_sent_at", table_name="deliveries")
    op.drop_index(op.f("ix_playbook_versions_playbook_id"), table_name="playbook_versions")
    op.drop_table("playbook_versions")
    op.drop_index("ix_cron_slots_status_lease_until", table_name="cron_slots")
    op.drop_table("cron_slots")
