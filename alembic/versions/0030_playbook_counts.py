"""Playbook counts: the funnel of each playbook, step and version, by local day

Runs started, refused (by reason), completed, exited (by rule), failed and cancelled; messages
scheduled, sent, skipped (by reason), failed and awaiting a staff member, added to in the
transactions that decide them (``smr.services.funnel``), so that a report sums a few rows a
day instead of scanning runs. ``shard`` spreads concurrent writers over rows.

``deliveries.playbook_version``: the version of the delivery's run, so that a message's
outcome is counted for its version without reading its run; filled in for the deliveries that
have an outcome to come.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "playbook_counts",
        sa.Column("playbook_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("version", sa.String(length=16), nullable=False),
        sa.Column("step", sa.String(length=200), nullable=False),
        sa.Column("metric", sa.String(length=80), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "playbook_id",
            "day",
            "version",
            "step",
            "metric",
            "shard",
            name=op.f("pk_playbook_counts"),
        ),
    )
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("playbook_version", sa.String(length=16), nullable=True))
    op.execute(
        "UPDATE deliveries SET playbook_version ="
        " (SELECT runs.playbook_version FROM runs WHERE runs.id = deliveries.run_id)"
        " WHERE status IN ('scheduled', 'sending', 'awaiting')"
    )


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("playbook_version")
    op.drop_table("playbook_counts")
