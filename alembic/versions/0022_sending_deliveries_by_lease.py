"""deliveries in flight found by their lease, through an index of only those rows

Every tick looks for deliveries a lost worker left in ``sending``: those past their lease are
marked ``uncertain`` or claimed again, oldest lease first. The ``(status, due_at, id)`` index
gave them in due order, so each tick read every ``sending`` entry, those of the rows sent since
the last vacuum included, and sorted them; a partial index on ``lease_until`` of the
``sending`` rows gives exactly the expired ones, in lease order.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SENDING = sa.text("status = 'sending'")


def upgrade() -> None:
    op.create_index(
        "ix_deliveries_sending_lease_until",
        "deliveries",
        ["lease_until"],
        postgresql_where=SENDING,
        sqlite_where=SENDING,
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_sending_lease_until", table_name="deliveries")
