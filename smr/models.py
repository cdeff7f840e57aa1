"""ORM models. The schema itself comes only from the Alembic migrations in ``alembic/``."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Every status a row of each table can have.
DeliveryStatus = Literal[
    "scheduled", "sending", "awaiting", "sent", "skipped", "failed", "cancelled", "uncertain"
]
RunStatus = Literal["active", "waiting", "completed", "exited", "failed", "cancelled"]
CronSlotStatus = Literal["pending", "running", "done", "missed", "skipped"]
#: Whether an event's ``occurred_at`` is the sender's or, the sender giving none, SMR's receipt.
OccurredAtSource = Literal["sent", "received"]

BigId = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC in, aware UTC out, on every backend (SQLite keeps naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: store aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this mapping as is
        datetime: UTCDateTime(),
        dict[str, Any]: Json,
        list[Any]: Json,
    }


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    tags: Mapped[list[Any]] = mapped_column(default=list)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    opted_out: Mapped[list[Any]] = mapped_column(default=list)
    orders: Mapped[int] = mapped_column(Integer, default=0)
    total_spent: Mapped[Decimal] = mapped_column(Numeric(20, 2), default=Decimal(0))
    first_order_at: Mapped[datetime | None]
    last_order_at: Mapped[datetime | None]
    #: Spend per calendar month in the policies' timezone, ``{"2026-11": "199.00"}``.
    monthly_spend: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ContactIdentity(Base):
    __tablename__ = "contact_identities"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(200), primary_key=True)
    contact_id: Mapped[str] = mapped_column(ForeignKey("contacts.id"), index=True)


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        # key first: lookups by key use the index whatever the planner thinks of "source".
        UniqueConstraint("key", "source"),
        Index("ix_events_contact_id_id", "contact_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(100))
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime]
    contact_id: Mapped[str] = mapped_column(ForeignKey("contacts.id"))
    data: Mapped[dict[str, Any]]
    occurred_at_source: Mapped[str] = mapped_column(
        String(8), default="sent", server_default=text("'sent'")
    )
    evaluations: Mapped[list[Any]] = mapped_column(default=list)


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_contact_id_playbook_id_status", "contact_id", "playbook_id", "status"),
        Index("ix_runs_status_wake_at", "status", "wake_at"),
        Index("ix_runs_playbook_id_id", "playbook_id", "id"),
        # The runs an event started; a cron run has no trigger event and no entry.
        Index(
            "ix_runs_trigger_event_id",
            "trigger_event_id",
            postgresql_where=text("trigger_event_id IS NOT NULL"),
            sqlite_where=text("trigger_event_id IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    contact_id: Mapped[str] = mapped_column(ForeignKey("contacts.id"))
    playbook_id: Mapped[str] = mapped_column(String(64))
    playbook_version: Mapped[str] = mapped_column(String(16))
    trigger_event_id: Mapped[str | None] = mapped_column(ForeignKey("events.id"))
    cron_slot_id: Mapped[str | None] = mapped_column(ForeignKey("cron_slots.id"))
    status: Mapped[str] = mapped_column(String(16))
    pc: Mapped[int] = mapped_column(Integer, default=0)
    wake_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class TraceEntry(Base):
    __tablename__ = "trace_entries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    at: Mapped[datetime]
    step: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]]


class Delivery(Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("run_id", "step"),
        # Claims take due deliveries in (due_at, id) order.
        Index("ix_deliveries_status_due_at_id", "status", "due_at", "id"),
        # Also how the frequency caps find a contact's deliveries.
        Index("ix_deliveries_contact_id_id", "contact_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"))
    contact_id: Mapped[str] = mapped_column(ForeignKey("contacts.id"))
    playbook_id: Mapped[str] = mapped_column(String(64))
    step: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(String(16))
    text: Mapped[str | None] = mapped_column(Text)
    template_code: Mapped[str | None] = mapped_column(String(100))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16))
    skip_reason: Mapped[str | None] = mapped_column(String(32))
    due_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    #: The vendor's id of what took an ``awaiting`` delivery (a WeCom mass-send task's msgid).
    vendor_ref: Mapped[str | None] = mapped_column(String(128))


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("deliveries.id"), index=True)
    at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(16))
    response: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)


class SendHit(Base):
    """A send a rate-limited channel let through, in its bucket (the channel, and the staff
    member or contact it counts apart): the sliding windows count these. With a
    ``delivery_id``, a reservation: the slot a held-back delivery goes in, at ``at``."""

    __tablename__ = "send_hits"
    __table_args__ = (
        Index("ix_send_hits_bucket_at", "bucket", "at"),
        Index("ix_send_hits_at", "at"),  # the sweep of old hits
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bucket: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime]
    delivery_id: Mapped[str | None] = mapped_column(String(32))


class MockOutbox(Base):
    __tablename__ = "mock_outbox"

    delivery_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    contact_id: Mapped[str] = mapped_column(String(64), index=True)
    recipient: Mapped[dict[str, Any]]
    text: Mapped[str | None] = mapped_column(Text)
    params: Mapped[dict[str, Any]]
    sent_at: Mapped[datetime]


def table_of(model: type[Base]) -> Table:
    """The Core table of a model, typed as a Table (for INSERT/UPDATE statements)."""
    return cast(Table, model.__table__)


class PlaybookVersion(Base):
    """Every playbook version that ever loaded, so a run acts on the version it started with."""

    __tablename__ = "playbook_versions"

    version: Mapped[str] = mapped_column(String(16), primary_key=True)
    playbook_id: Mapped[str] = mapped_column(String(64), index=True)
    file: Mapped[str] = mapped_column(String(500))
    source: Mapped[str] = mapped_column(Text)
    loaded_at: Mapped[datetime]


class CronSlot(Base):
    """One firing of a schedule playbook; the unique key makes each slot fire once."""

    __tablename__ = "cron_slots"
    __table_args__ = (
        UniqueConstraint("playbook_id", "slot_at"),
        Index("ix_cron_slots_status_lease_until", "status", "lease_until"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    playbook_id: Mapped[str] = mapped_column(String(64))
    playbook_version: Mapped[str] = mapped_column(String(16))
    slot_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    cursor: Mapped[str | None] = mapped_column(String(64))
    runs_started: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WeComKfCursor(Base):
    """Where the last kf/sync_msg pull of one 微信客服 account ended."""

    __tablename__ = "wecom_kf_cursors"

    open_kfid: Mapped[str] = mapped_column(String(64), primary_key=True)
    cursor: Mapped[str] = mapped_column(String(256))
    updated_at: Mapped[datetime]


# --- customer groups (migration 0014) ---


# --- media (migration 0015) ---


# --- Moments (migration 0016) ---


# --- channel codes (migration 0017) ---
