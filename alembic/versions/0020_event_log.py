"""the event log: accept appends, processors take events in order per contact

``event_log`` holds the accepted events not processed yet, in the order they were accepted
(``seq``), each with its partition and route (``smr.eventlog``); a processor deletes an
event's entry in the transaction that writes the event's effects. Its ``event_id`` has no
foreign key: the entry is written by the statement that writes its event, and checking the
key cost a third of that statement. ``events`` now stores an
event when it is accepted: ``status`` is ``pending`` until it is processed (``processed_at``),
its contact (``contact_id``) is known from then on, and ``contact`` keeps the contact
reference as posted. Every stored event was processed.

``log_partitions`` holds one row per partition with its owner and lease; ``log_members`` the
processors alive (each partition's fair share is the partitions over the members).
``contacts.partition`` is each contact's partition for life, backfilled from its id.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

import zlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PARTITIONS = 64  # smr.eventlog.PARTITIONS, as it was when this ran
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.alter_column("contact_id", existing_type=sa.String(length=64), nullable=True)
        batch.add_column(sa.Column("contact", JSON, nullable=True))
        batch.add_column(
            sa.Column("status", sa.String(length=16), nullable=False, server_default="processed")
        )
        batch.add_column(sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "event_log",
        sa.Column("seq", SEQ, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=32), nullable=False),
        sa.Column("partition", sa.SmallInteger(), nullable=False),
        sa.Column("route", sa.String(length=240), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_event_log")),
    )
    op.create_index("ix_event_log_partition_seq", "event_log", ["partition", "seq"])
    op.create_index("ix_event_log_route_seq", "event_log", ["route", "seq"])
    op.create_index(
        "ix_event_log_seq_urgent",
        "event_log",
        ["seq"],
        postgresql_where=sa.text("urgent"),
        sqlite_where=sa.text("urgent"),
    )
    op.create_table(
        "log_partitions",
        sa.Column("partition", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("partition", name=op.f("pk_log_partitions")),
    )
    op.bulk_insert(
        sa.table("log_partitions", sa.column("partition", sa.SmallInteger())),
        [{"partition": p} for p in range(PARTITIONS)],
    )
    op.create_table(
        "log_members",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_members")),
    )
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(
            sa.Column("partition", sa.SmallInteger(), nullable=False, server_default="0")
        )
    _backfill_partitions()


def _backfill_partitions() -> None:
    contacts = sa.table("contacts", sa.column("id", sa.String()), sa.column("partition"))
    bind = op.get_bind()
    ids = [row[0] for row in bind.execute(sa.select(contacts.c.id))]
    update = (
        sa.update(contacts)
        .where(contacts.c.id == sa.bindparam("b_id"))
        .values(partition=sa.bindparam("b_partition"))
    )
    for start in range(0, len(ids), 10_000):
        chunk = ids[start : start + 10_000]
        rows = [{"b_id": i, "b_partition": zlib.crc32(i.encode()) % PARTITIONS} for i in chunk]
        bind.execute(update, rows)


def downgrade() -> None:
    # Events still pending are lost with the log: process them before downgrading.
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("partition")
    op.drop_table("log_members")
    op.drop_table("log_partitions")
    op.drop_index("ix_event_log_seq_urgent", table_name="event_log")
    op.drop_index("ix_event_log_route_seq", table_name="event_log")
    op.drop_index("ix_event_log_partition_seq", table_name="event_log")
    op.drop_table("event_log")
    op.execute("DELETE FROM events WHERE status = 'pending'")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("processed_at")
        batch.drop_column("status")
        batch.drop_column("contact")
        batch.alter_column("contact_id", existing_type=sa.String(length=64), nullable=False)
