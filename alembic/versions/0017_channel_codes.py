"""channel codes (渠道活码): the contact-way codes SMR keeps for declared sources

One row per declared ``state``: what WeCom has for it (config_id, its add_contact_way type, the
QR picture URL, the hash of the declaration it was made from), how the last attempt went, and a
lease so that one process at a time acts on a code. A partial index on the contact.added events
lets the per-code report find the adds without reading every event.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ADDED = sa.text("type = 'contact.added'")


def upgrade() -> None:
    op.create_table(
        "channel_codes",
        sa.Column("state", sa.String(length=30), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("config_id", sa.String(length=64), nullable=True),
        sa.Column("wecom_type", sa.Integer(), nullable=True),
        sa.Column("qr_code", sa.Text(), nullable=True),
        sa.Column("spec_hash", sa.String(length=16), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("state", name=op.f("pk_channel_codes")),
    )
    op.create_index(
        "ix_events_contact_added_occurred_at",
        "events",
        ["occurred_at"],
        unique=False,
        postgresql_where=ADDED,
        sqlite_where=ADDED,
    )


def downgrade() -> None:
    op.drop_index("ix_events_contact_added_occurred_at", table_name="events")
    op.drop_table("channel_codes")
