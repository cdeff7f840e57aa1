"""send_hits.delivery_id: a delivery a rate limit holds back reserves its slot

A delivery over its channel's limit was given the time its window frees, in memory only, so
every later claim computed the same time: at each window all that waited came due together,
the limit's worth went and the rest were held back again, each with another ``rate_limited``
entry. Now a held-back delivery's slot is a row here (``delivery_id`` set, ``at`` the time it
goes), later claims queue behind the reserved slots, and the delivery goes on its slot.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("send_hits", sa.Column("delivery_id", sa.String(length=32), nullable=True))


def downgrade() -> None:
    # Without the column a reservation would read as a send made at its (future) time.
    op.execute("DELETE FROM send_hits WHERE delivery_id IS NOT NULL")
    with op.batch_alter_table("send_hits") as batch:
        batch.drop_column("delivery_id")
