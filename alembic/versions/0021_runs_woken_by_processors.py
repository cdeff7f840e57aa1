"""due runs are advanced by the processors of their contacts' partitions, without a claim

A waiting run whose wake time has come is advanced by the processor that holds its contact's
event log partition, in one transaction, with no ``active`` state or lease of its own. Runs a
worker had claimed (``active``) when this version was installed go back to ``waiting``, due
at the time they were due, and are advanced again from where they were.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        sa.text(
            "UPDATE runs SET status = 'waiting', lease_until = NULL, "
            "wake_at = COALESCE(wake_at, updated_at) WHERE status = 'active'"
        )
    )


def downgrade() -> None:
    # Waiting runs are what the claiming waker takes too: nothing to undo.
    pass
