"""smr_all_landed(): a statement that writes several tables aborts when a row falls short

``write_together`` writes several tables in one statement and counts the rows that had to land
(new events and contacts, identities claimed, contacts updated only if unchanged since read).
When one fell short, the statement must leave nothing behind, even when it runs on its own,
committed as it ends. This function, called with the counts in the statement's last SELECT,
raises SQLSTATE ``SMR01`` then, which aborts the statement and everything it wrote. SQLite
writes the tables in turn in a transaction the caller rolls back, and needs no function.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION smr_all_landed(landed bigint, expected bigint) RETURNS bigint
        LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
            IF landed IS DISTINCT FROM expected THEN
                RAISE EXCEPTION 'write_together: % of % rows that had to land did',
                    landed, expected
                    USING ERRCODE = 'SMR01';
            END IF;
            RETURN landed;
        END
        $$
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION smr_all_landed(bigint, bigint)")
