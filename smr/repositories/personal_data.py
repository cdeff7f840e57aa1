"""Everything stored about one person, read whole (an export) or erased (PIPL Art. 45, 47).

A person's rows are found by their contact id; the rows that name them another way are found
by their identities: pending events by their log route (``smr.eventlog.fallback_route``),
Moments engagements and group memberships by their WeCom external userid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, false, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from smr.eventlog import EventStatus, fallback_route
from smr.models import (
    Contact,
    ContactIdentity,
    Delivery,
    DeliveryAttempt,
    Event,
    EventLogEntry,
    GroupMember,
    MockOutbox,
    MomentEngagement,
    Run,
    SegmentMember,
    TraceEntry,
)
from smr.repositories.contacts import PERSON_BLANKED, identities_of
from smr.repositories.runs import ACTIVE
from smr.statuses import DeliveryStatus, RunStatus
from smr.subjects import ContactKind

#: What an erased trace entry's detail reads.
ERASED_DETAIL = {"erased": True}
#: Why an erased person's waiting runs ended.
ERASED_REASON = "contact erased"


@dataclass(frozen=True)
class PersonalRows:
    """A person's rows, as stored."""

    contact: Contact
    identities: dict[str, str]
    events: list[Event]
    runs: list[Run]
    trace: list[TraceEntry]
    deliveries: list[Delivery]
    attempts: list[DeliveryAttempt]
    outbox: list[MockOutbox]
    group_memberships: list[GroupMember]
    moment_engagements: list[MomentEngagement]


@dataclass(frozen=True)
class Erased:
    """How many rows an erasure emptied or removed, table by table."""

    identities: int
    events: int
    pending_events: int
    runs_stopped: int
    runs: int
    trace_entries: int
    deliveries: int
    deliveries_cancelled: int
    deliveries_in_flight: int
    attempts: int
    outbox: int
    group_memberships: int
    moment_engagements: int
    segment_memberships: int
    #: The events taken out of the log, marked ``erased`` (as ``pending_events`` counts them).
    pending_marked: int
    #: The tombstone (1).
    contact: int


async def held(session: AsyncSession, contact_id: str) -> Contact | None:
    """The contact, locked until the transaction ends (PostgreSQL; SQLite's writers take
    turns): the processors and wakers lock a contact before they change anything of it."""
    stmt = select(Contact).where(Contact.id == contact_id).with_for_update()
    return (await session.scalars(stmt)).one_or_none()


async def identities(session: AsyncSession, contact_id: str) -> dict[str, str]:
    return (await identities_of(session, [contact_id]))[contact_id]


async def rows_of(session: AsyncSession, contact: Contact) -> PersonalRows:
    """Every row stored about ``contact`` (events pending in the log included)."""
    known = await identities(session, contact.id)
    # The ids, not a subquery: an OR with a subquery would be a scan of every event.
    pending = list(
        await session.scalars(select(EventLogEntry.event_id).where(_routed_to(contact.id, known)))
    )
    events = or_(Event.contact_id == contact.id, Event.id.in_(pending))
    runs = Run.contact_id == contact.id
    deliveries = Delivery.contact_id == contact.id
    return PersonalRows(
        contact=contact,
        identities=known,
        events=await _all(session, select(Event).where(events).order_by(Event.id)),
        runs=await _all(session, select(Run).where(runs).order_by(Run.id)),
        trace=await _all(
            session,
            select(TraceEntry)
            .where(TraceEntry.run_id.in_(select(Run.id).where(runs)))
            .order_by(TraceEntry.id),
        ),
        deliveries=await _all(session, select(Delivery).where(deliveries).order_by(Delivery.id)),
        attempts=await _all(
            session,
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id.in_(select(Delivery.id).where(deliveries)))
            .order_by(DeliveryAttempt.id),
        ),
        outbox=await _all(
            session,
            select(MockOutbox)
            .where(MockOutbox.contact_id == contact.id)
            .order_by(MockOutbox.delivery_id),
        ),
        group_memberships=await _all(
            session,
            select(GroupMember).where(_member(contact.id, known)).order_by(GroupMember.chat_id),
        ),
        moment_engagements=await _all(
            session,
            select(MomentEngagement)
            .where(_engaged(known))
            .order_by(MomentEngagement.created_at, MomentEngagement.key),
        ),
    )


async def _all(session: AsyncSession, stmt: Any) -> list[Any]:
    return list((await session.scalars(stmt)).all())


async def erase(session: AsyncSession, contact: Contact, *, now: datetime) -> Erased:
    """Erase what ``contact`` (held: ``held``) says about a person, keeping what counts:
    the contact stays as a tombstone (kind ``erased``) with its order stats, and its events,
    runs, trace entries, deliveries, attempts and outbox rows stay, emptied of their content.
    Its identities, group memberships and Moments engagements go; its waiting runs are
    cancelled with their scheduled deliveries; its events still in the log leave it, never
    to be processed (status ``erased``)."""
    cid = contact.id
    known = await identities(session, cid)
    pending = await _pending_events(session, _routed_to(cid, known))
    counts = {
        "pending_events": len(pending),
        "runs": await _counted(session, Run, Run.contact_id == cid),
        "deliveries_in_flight": await _counted(
            session, Delivery, Delivery.contact_id == cid, Delivery.status == DeliveryStatus.SENDING
        ),
    }
    for name, stmt in _erasures(cid, known, pending, now=now).items():
        result: Any = await session.execute(stmt)  # an UPDATE's or a DELETE's CursorResult
        counts[name] = int(result.rowcount or 0)
    return Erased(**counts)


def _erasures(
    cid: str, known: dict[str, str], pending: list[str], *, now: datetime
) -> dict[str, Any]:
    """The statements of an erasure, in order, by the count each gives."""
    runs = select(Run.id).where(Run.contact_id == cid).scalar_subquery()
    deliveries = select(Delivery.id).where(Delivery.contact_id == cid).scalar_subquery()
    return {
        "identities": delete(ContactIdentity).where(ContactIdentity.contact_id == cid),
        "group_memberships": delete(GroupMember).where(_member(cid, known)),
        "moment_engagements": delete(MomentEngagement).where(_engaged(known)),
        "segment_memberships": delete(SegmentMember).where(SegmentMember.contact_id == cid),
        "events": _blank_events(or_(Event.contact_id == cid, Event.id.in_(pending))),
        "pending_marked": update(Event)
        .where(Event.id.in_(pending))
        .values(status=EventStatus.ERASED, processed_at=now),
        "runs_stopped": update(Run)
        .where(Run.contact_id == cid, Run.status.in_(ACTIVE))
        .values(
            status=RunStatus.CANCELLED,
            end_reason=ERASED_REASON,
            ended_at=now,
            wake_at=None,
            updated_at=now,
        ),
        "trace_entries": update(TraceEntry)
        .where(TraceEntry.run_id.in_(runs))
        .values(detail=ERASED_DETAIL),
        "deliveries_cancelled": update(Delivery)
        .where(Delivery.contact_id == cid, Delivery.status == DeliveryStatus.SCHEDULED)
        .values(status=DeliveryStatus.CANCELLED, updated_at=now),
        "deliveries": update(Delivery)
        .where(Delivery.contact_id == cid)
        .values(text=None, params={}, attachments=[], last_error=None, updated_at=now),
        "attempts": update(DeliveryAttempt)
        .where(DeliveryAttempt.delivery_id.in_(deliveries))
        .values(response=None),
        "outbox": update(MockOutbox)
        .where(MockOutbox.contact_id == cid)
        .values(recipient={}, text=None, params={}),
        "contact": update(Contact)
        .where(Contact.id == cid)
        .values({**PERSON_BLANKED, "kind": ContactKind.ERASED, "updated_at": now}),
    }


async def _counted(session: AsyncSession, table: Any, *where: ColumnElement[bool]) -> int:
    stmt = select(func.count()).select_from(table).where(*where)
    return int(await session.scalar(stmt) or 0)


async def blank_events(session: AsyncSession, ids: Sequence[str]) -> None:
    """Empty events of erased contacts (processed after the erasure)."""
    if ids:
        await session.execute(_blank_events(Event.id.in_(list(ids))))


def _blank_events(where: ColumnElement[bool]) -> Any:
    # The key too: a source's key may hold an identity (a WeCom callback's external userid).
    return (
        update(Event).where(where).values(data={}, contact=None, key=literal("erased:") + Event.id)
    )


async def _pending_events(session: AsyncSession, routed: ColumnElement[bool]) -> list[str]:
    """Take the events routed to the person out of the log; their ids."""
    stmt = delete(EventLogEntry).where(routed).returning(EventLogEntry.event_id)
    return list((await session.scalars(stmt)).all())


def _routed_to(contact_id: str, known: dict[str, str]) -> ColumnElement[bool]:
    """Log entries of the person: routed to its id, or to one of its identities (accepted
    before anyone knew the contact)."""
    routes = [contact_id, *(fallback_route(None, {kind: value}) for kind, value in known.items())]
    return EventLogEntry.route.in_(routes)


def _member(contact_id: str, known: dict[str, str]) -> ColumnElement[bool]:
    userid = known.get("wecom_userid")
    mine = GroupMember.contact_id == contact_id
    return or_(mine, GroupMember.userid == userid) if userid else mine


def _engaged(known: dict[str, str]) -> ColumnElement[bool]:
    userid = known.get("wecom_userid")
    return MomentEngagement.external_userid == userid if userid else false()
