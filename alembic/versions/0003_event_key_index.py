"""events: unique (key, source) instead of (source, key)

Lookups of a batch's keys lead with the key, so even a generic plan finds each key through the
index instead of scanning every event of the source.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_constraint("uq_events_source_key", type_="unique")
        batch.create_unique_constraint("uq_events_key_source", ["key", "source"])


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_constraint("uq_events_key_source", type_="unique")
        batch.create_unique_constraint("uq_events_source_key", ["source", "key"])
