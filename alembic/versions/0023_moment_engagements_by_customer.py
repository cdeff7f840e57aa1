"""Moments engagements found by the customer who reacted

Erasing a person (``DELETE /v1/contacts/{id}``) removes their likes and comments, found by
their WeCom external userid: without an index, a scan of every engagement ever read.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_moment_engagements_external_userid", "moment_engagements", ["external_userid"]
    )


def downgrade() -> None:
    op.drop_index("ix_moment_engagements_external_userid", table_name="moment_engagements")
