"""ORM models. The schema itself comes only from the Alembic migrations in ``alembic/``."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal, TypeVar, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
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

from smr.eventlog import EventStatus
from smr.statuses import AttemptOutcome, DeliveryStatus, RunStatus, SkipReason
from smr.subjects import ContactKind

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Every status a cron slot can have (a delivery's, a run's: ``smr.statuses``).
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


E = TypeVar("E", bound=StrEnum)


class EnumText(TypeDecorator[E]):
    """A ``StrEnum`` member stored as its value in a VARCHAR(``length``): a member (or its
    value) in, the member out; a value outside the enum raises ValueError either way."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[E], length: int) -> None:
        super().__init__(length)
        self.enum = enum
        self.length = length

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        return None if value is None else self.enum(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this mapping as is
        datetime: UTCDateTime(),
        dict[str, Any]: Json,
        list[Any]: Json,
    }


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (
        Index(
            "ix_contacts_merged_into",
            "merged_into",
            postgresql_where=text("merged_into IS NOT NULL"),
            sqlite_where=text("merged_into IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(
        String(8), default=ContactKind.PERSON, server_default=ContactKind.PERSON
    )
    name: Mapped[str | None] = mapped_column(String(200))
    tags: Mapped[list[Any]] = mapped_column(default=list)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    opted_out: Mapped[list[Any]] = mapped_column(default=list)
    #: Marketing consent per channel, as the customer gave it (``contact.consented``):
    #: ``{"sms": {"at", "source", "wording", "campaign", "event_id"}}``.
    consents: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))
    #: What the contact bought, by SKU and by category (``smr.services.purchases``).
    purchases: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))
    #: The segments it is in (``smr.services.segments``), as ``segment_members`` holds them.
    segments: Mapped[list[Any]] = mapped_column(default=list, server_default=text("'[]'"))
    orders: Mapped[int] = mapped_column(Integer, default=0)
    total_spent: Mapped[Decimal] = mapped_column(Numeric(20, 2), default=Decimal(0))
    first_order_at: Mapped[datetime | None]
    last_order_at: Mapped[datetime | None]
    #: When its latest event of any kind, and its latest chat message, happened.
    last_seen_at: Mapped[datetime | None]
    last_message_at: Mapped[datetime | None]
    #: Spend per calendar month in the policies' timezone, ``{"2026-11": "199.00"}``.
    monthly_spend: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    #: The event log partition of its events, for life (``smr.eventlog``).
    partition: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    #: A merged contact's survivor (kind ``merged``): the contact its id now finds.
    merged_into: Mapped[str | None] = mapped_column(String(64))


class ContactMerge(Base):
    """A contact merged into another (``smr.services.merging``): by which identity kinds, on
    which event (none for an import), and how many rows of each table moved."""

    __tablename__ = "contact_merges"
    __table_args__ = (
        Index("ix_contact_merges_survivor_id", "survivor_id"),
        Index("ix_contact_merges_merged_id", "merged_id", unique=True),
        Index("ix_contact_merges_event_id", "event_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    survivor_id: Mapped[str] = mapped_column(String(64))
    merged_id: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str | None] = mapped_column(String(32))
    by: Mapped[list[Any]]
    moved: Mapped[dict[str, Any]]
    at: Mapped[datetime]


class SegmentMember(Base):
    """A customer in a segment, since when (``smr.services.segments``)."""

    __tablename__ = "segment_members"
    __table_args__ = (Index("ix_segment_members_contact_id", "contact_id"),)

    segment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    contact_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    since: Mapped[datetime]


class PlaybookCount(Base):
    """How often something happened to a playbook's runs on a local day (its policies'
    timezone): runs started, refused, ended; messages scheduled, sent, skipped (``metric``,
    ``smr.services.funnel``), at a ``step`` (``""``: the run), for one ``version``. Each
    transaction adds to a ``shard`` of its own choosing, so that concurrent writers seldom
    wait for one another; a report sums the shards."""

    __tablename__ = "playbook_counts"

    playbook_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD
    version: Mapped[str] = mapped_column(String(16), primary_key=True)
    step: Mapped[str] = mapped_column(String(200), primary_key=True)
    metric: Mapped[str] = mapped_column(String(80), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


class SegmentVersion(Base):
    """The definition of a segment whose members were last filled in whole."""

    __tablename__ = "segment_versions"

    segment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[str] = mapped_column(String(16))
    filled_at: Mapped[datetime]


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
    #: Known once the event is processed.
    contact_id: Mapped[str | None] = mapped_column(ForeignKey("contacts.id"))
    data: Mapped[dict[str, Any]]
    occurred_at_source: Mapped[str] = mapped_column(
        String(8), default="sent", server_default=text("'sent'")
    )
    evaluations: Mapped[list[Any]] = mapped_column(default=list)
    #: The contact reference as posted (``smr.schemas.ContactRef``).
    contact: Mapped[dict[str, Any] | None]
    status: Mapped[str] = mapped_column(
        String(16), default=EventStatus.PROCESSED, server_default=EventStatus.PROCESSED
    )
    processed_at: Mapped[datetime | None]


class EventLogEntry(Base):
    """An accepted event not processed yet (see ``smr.eventlog``)."""

    __tablename__ = "event_log"
    __table_args__ = (
        Index("ix_event_log_partition_seq", "partition", "seq"),
        Index("ix_event_log_route_seq", "route", "seq"),
        Index(
            "ix_event_log_seq_urgent",
            "seq",
            postgresql_where=text("urgent"),
            sqlite_where=text("urgent"),
        ),
    )

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: The event (no foreign key: written by the statement that writes the event).
    event_id: Mapped[str] = mapped_column(String(32))
    partition: Mapped[int] = mapped_column(SmallInteger)
    route: Mapped[str] = mapped_column(String(240))
    urgent: Mapped[bool]
    received_at: Mapped[datetime]


class LogPartition(Base):
    """A partition of the event log, its owner and the owner's lease."""

    __tablename__ = "log_partitions"

    partition: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]


class LogMember(Base):
    """A processor alive (it renews ``seen_at``), sharing the partitions with the others."""

    __tablename__ = "log_members"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime]


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
    #: The item of ``trigger.each`` it is for (``run.item``).
    item: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[RunStatus] = mapped_column(EnumText(RunStatus, 16))
    pc: Mapped[int] = mapped_column(Integer, default=0)
    wake_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    #: When its playbook's goal was reached, and the event that reached it.
    converted_at: Mapped[datetime | None]
    converted_event_id: Mapped[str | None] = mapped_column(String(32))


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
        # Deliveries in flight past their lease (a lost worker's), oldest lease first.
        Index(
            "ix_deliveries_sending_lease_until",
            "lease_until",
            postgresql_where=text("status = 'sending'"),
            sqlite_where=text("status = 'sending'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"))
    contact_id: Mapped[str] = mapped_column(ForeignKey("contacts.id"))
    playbook_id: Mapped[str] = mapped_column(String(64))
    #: Its run's playbook version, for the funnel counts (none on rows older than it).
    playbook_version: Mapped[str | None] = mapped_column(String(16))
    step: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(String(16))
    text: Mapped[str | None] = mapped_column(Text)
    template_code: Mapped[str | None] = mapped_column(String(100))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[DeliveryStatus] = mapped_column(EnumText(DeliveryStatus, 16))
    skip_reason: Mapped[SkipReason | None] = mapped_column(EnumText(SkipReason, 32))
    due_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    #: The vendor's id of what took an ``awaiting`` delivery (a WeCom mass-send task's msgid).
    vendor_ref: Mapped[str | None] = mapped_column(String(128))
    attachments: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("deliveries.id"), index=True)
    at: Mapped[datetime]
    outcome: Mapped[AttemptOutcome] = mapped_column(EnumText(AttemptOutcome, 16))
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


class GroupStatus(StrEnum):
    """Whether WeCom still has the group: ``dismissed`` once dismissed (a callback) or no longer
    listed by groupchat/list."""

    ACTIVE = "active"
    DISMISSED = "dismissed"


class GroupOwnerStatus(StrEnum):
    """The owner's status groupchat/list reports: 0 跟进人正常, 1 跟进人离职, 2 离职继承中,
    3 离职继承完成."""

    EMPLOYED = "employed"
    RESIGNED = "resigned"
    TRANSFERRING = "transferring"
    TRANSFERRED = "transferred"


class GroupMemberType(StrEnum):
    """groupchat/get's member_list[].type: 1 企业成员 (staff), 2 外部联系人 (customer)."""

    STAFF = "staff"
    CUSTOMER = "customer"


class Group(Base):
    """A WeCom customer group (客户群), kept in step by the daily sync and the callbacks."""

    __tablename__ = "groups"
    __table_args__ = (Index("ix_groups_owner_chat_id", "owner", "chat_id"),)

    chat_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(200))
    notice: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    owner_status: Mapped[str] = mapped_column(String(16))
    #: groupchat/get's member_version, or a callback's CurMemVer applied without a fetch.
    member_version: Mapped[str | None] = mapped_column(String(64))
    member_count: Mapped[int] = mapped_column(Integer, default=0)
    #: WeCom's create_time.
    created_at: Mapped[datetime | None]
    #: When WeCom last reported the group (groupchat/list or groupchat/get).
    synced_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class GroupMember(Base):
    """A current member of a group (a member who leaves is deleted; the events keep history)."""

    __tablename__ = "group_members"
    __table_args__ = (Index("ix_group_members_userid", "userid"),)

    chat_id: Mapped[str] = mapped_column(ForeignKey("groups.chat_id"), primary_key=True)
    #: A staff userid, or a customer's external_userid (a contact's ``wecom_userid``).
    userid: Mapped[str] = mapped_column(String(200), primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    contact_id: Mapped[str | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), index=True
    )
    name: Mapped[str | None] = mapped_column(Text)
    join_time: Mapped[datetime | None]
    join_scene: Mapped[int | None] = mapped_column(Integer)
    invitor: Mapped[str | None] = mapped_column(String(200))
    group_nickname: Mapped[str | None] = mapped_column(Text)


class GroupTag(Base):
    """SMR's own tags on a group (WeCom has none)."""

    __tablename__ = "group_tags"
    __table_args__ = (Index("ix_group_tags_tag", "tag"),)

    chat_id: Mapped[str] = mapped_column(ForeignKey("groups.chat_id"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(100), primary_key=True)


class PeriodicSlot(Base):
    """One firing of a periodic job (``name``) at ``slot_at``: whoever inserts the row runs it,
    so a slot fires once however many workers tick."""

    __tablename__ = "periodic_slots"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    slot_at: Mapped[datetime] = mapped_column(primary_key=True)
    taken_at: Mapped[datetime]


# --- media (migration 0015) ---


class WeComMedia(Base):
    """A file uploaded to WeCom, by the corp, the content's SHA-256 and how it was uploaded
    (``kind``: image, video, file; moment_image, moment_video; picture_url). ``media_id`` is
    valid until ``expires_at`` (3 days); a picture_url (media/uploadimg) has a ``url`` for
    good and no ``expires_at``."""

    __tablename__ = "wecom_media"

    corp_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    media_id: Mapped[str | None] = mapped_column(String(256))
    url: Mapped[str | None] = mapped_column(String(2048))
    size: Mapped[int] = mapped_column(Integer)
    uploaded_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]


# --- Moments (migration 0016) ---


class MomentTaskStatus(StrEnum):
    """A Moments task SMR made (add_moment_task): ``creating`` until WeCom has made the
    moment; ``waiting`` for a staff member to publish it; ``published`` once one has;
    ``failed`` when WeCom refused it or nobody published it in time (then cancelled)."""

    CREATING = "creating"
    WAITING = "waiting"
    PUBLISHED = "published"
    FAILED = "failed"


class MomentEngagementKind(StrEnum):
    LIKE = "like"
    COMMENT = "comment"


class MomentTask(Base):
    """A Moments (朋友圈) post SMR asked WeCom for: the delivery that made it, the task's
    ``jobid``, the ``moment_id`` once made and the staff who published it."""

    __tablename__ = "moment_tasks"
    __table_args__ = (
        UniqueConstraint("jobid"),
        Index("ix_moment_tasks_moment_id", "moment_id"),
        Index("ix_moment_tasks_delivery_id", "delivery_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    jobid: Mapped[str] = mapped_column(String(128))
    delivery_id: Mapped[str] = mapped_column(String(32))
    moment_id: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    published_by: Mapped[list[Any]] = mapped_column(default=list)
    #: WeCom's last word on the task (invalid senders or tags, a refusal).
    response: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class MomentEngagement(Base):
    """A like or comment read back from get_moment_comments, keyed like the event it became
    (``moment:<moment_id>:<staff>:<external_userid>:<kind>:<create_time>``)."""

    __tablename__ = "moment_engagements"
    __table_args__ = (
        Index("ix_moment_engagements_moment_id_kind", "moment_id", "kind"),
        # A person's, when they are erased.
        Index("ix_moment_engagements_external_userid", "external_userid"),
    )

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    moment_id: Mapped[str] = mapped_column(String(128))
    staff: Mapped[str] = mapped_column(String(64))
    external_userid: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime]


# --- channel codes (migration 0017) ---

import enum  # noqa: E402 - this section's own import, kept with it


class ChannelCodeStatus(enum.StrEnum):
    """``pending``: declared, not made in WeCom yet; ``active``: WeCom has the declared code;
    ``failed``: the last WeCom call failed (``last_error``), retried at ``retry_at``;
    ``removed``: no longer declared, deleted from WeCom (its report stays)."""

    PENDING = "pending"
    ACTIVE = "active"
    FAILED = "failed"
    REMOVED = "removed"


class ChannelCodeRow(Base):
    """A channel code (渠道活码) SMR made in WeCom for a declared ``state``."""

    __tablename__ = "channel_codes"

    state: Mapped[str] = mapped_column(String(30), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    #: WeCom's config_id of the 联系我 / 加入群聊 way, and its add_contact_way ``type``.
    config_id: Mapped[str | None] = mapped_column(String(64))
    wecom_type: Mapped[int | None] = mapped_column(Integer)
    qr_code: Mapped[str | None] = mapped_column(Text)
    #: The hash of the declaration WeCom has (``ChannelCodeSpec.spec_hash``).
    spec_hash: Mapped[str | None] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    retry_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    synced_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


#: The channel code reports read the contact.added events by time; few events are adds.
Index(
    "ix_events_contact_added_occurred_at",
    Event.occurred_at,
    postgresql_where=text("type = 'contact.added'"),
    sqlite_where=text("type = 'contact.added'"),
)


# --- group welcome templates (migration 0018) ---

import enum  # noqa: E402 - this section's own import, kept with it


class GroupWelcomeStatus(enum.StrEnum):
    """``pending``: declared, not in WeCom yet; ``active``: WeCom has the declared content;
    ``failed``: the last WeCom call failed (``last_error``), retried at ``retry_at``;
    ``removed``: no longer declared, deleted from WeCom."""

    PENDING = "pending"
    ACTIVE = "active"
    FAILED = "failed"
    REMOVED = "removed"


class GroupWelcomeTemplate(Base):
    """The group welcome template (入群欢迎语素材) SMR keeps in WeCom for a playbook's
    ``group_welcome``."""

    __tablename__ = "group_welcome_templates"

    playbook_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    #: WeCom's template_id (group_welcome_template/add).
    template_id: Mapped[str | None] = mapped_column(String(128))
    #: The hash of the rendered content WeCom has (its media files' bytes included).
    content_hash: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    retry_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    synced_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
