"""Contact merges: a contact's rows moved to the survivor, the tombstone it leaves, and the
merge's record (``smr.services.merging``)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from smr.models import (
    Contact,
    ContactIdentity,
    ContactMerge,
    Delivery,
    Event,
    GroupMember,
    MockOutbox,
    Run,
    SegmentMember,
    table_of,
)
from smr.repositories._bulk import insert_many
from smr.repositories._sql import one_of
from smr.repositories.runs import ACTIVE
from smr.subjects import ContactKind


@dataclass(frozen=True)
class ActiveRun:
    """A waiting run of one of the contacts a merge joins."""

    id: str
    contact_id: str
    playbook_id: str
    version: str
    started_at: datetime


async def active_runs(session: AsyncSession, contact_ids: Collection[str]) -> list[ActiveRun]:
    """The active and waiting runs of these contacts, oldest first."""
    stmt = (
        select(Run.id, Run.contact_id, Run.playbook_id, Run.playbook_version, Run.started_at)
        .where(one_of(session, Run.contact_id, list(contact_ids)), Run.status.in_(ACTIVE))
        .order_by(Run.started_at, Run.id)
    )
    return [ActiveRun(*row) for row in await session.execute(stmt)]


async def move(
    session: AsyncSession, *, merged: str, survivor: str, now: datetime
) -> dict[str, int]:
    """Move every row of the contact ``merged`` to ``survivor`` and leave it a tombstone
    (kind ``merged``, ``merged_into`` the survivor, nothing of the person kept: the survivor
    holds it now); returns how many rows of each table moved. Both contacts are locked."""
    moved: dict[str, int] = {}
    for name, stmt in _moves(merged, survivor, now=now).items():
        result: Any = await session.execute(stmt)  # an UPDATE's CursorResult
        moved[name] = int(result.rowcount or 0)
    return moved


def _moves(merged: str, survivor: str, *, now: datetime) -> dict[str, Any]:
    def moving(column: Any) -> Any:
        return update(column.class_).where(column == merged).values({column.key: survivor})

    return {
        "identities": moving(ContactIdentity.contact_id),
        "events": moving(Event.contact_id),
        "runs": moving(Run.contact_id),
        "deliveries": moving(Delivery.contact_id),
        "outbox": moving(MockOutbox.contact_id),
        "group_memberships": moving(GroupMember.contact_id),
        # Its memberships go: the survivor's are evaluated again with what it took in.
        "segment_memberships": delete(SegmentMember).where(SegmentMember.contact_id == merged),
        # Earlier merges into this one now name the survivor: one hop finds it.
        "merges": moving(ContactMerge.survivor_id),
        "tombstones": moving(Contact.merged_into),
        "contact": update(Contact)
        .where(Contact.id == merged)
        .values(
            kind=ContactKind.MERGED,
            merged_into=survivor,
            name=None,
            tags=[],
            attributes={},
            opted_out=[],
            consents={},
            purchases={},
            segments=[],
            orders=0,
            total_spent=Decimal(0),
            first_order_at=None,
            last_order_at=None,
            last_seen_at=None,
            last_message_at=None,
            monthly_spend={},
            updated_at=now,
        ),
    }


async def record(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Record merges (``ContactMerge`` columns)."""
    await insert_many(session, table_of(ContactMerge), list(rows))


async def survivor_of(session: AsyncSession, contact_id: str) -> str | None:
    """The contact a merged contact's id finds now (none if it was not merged)."""
    stmt = select(Contact.merged_into).where(
        Contact.id == contact_id, Contact.kind == ContactKind.MERGED
    )
    return await session.scalar(stmt)


async def of_contact(session: AsyncSession, contact_id: str) -> list[ContactMerge]:
    """The merges into ``contact_id``, oldest first."""
    return await _merges(session, ContactMerge.survivor_id == contact_id)


async def of_event(session: AsyncSession, event_id: str) -> list[ContactMerge]:
    """The merges ``event_id`` caused."""
    return await _merges(session, ContactMerge.event_id == event_id)


async def _merges(session: AsyncSession, where: ColumnElement[bool]) -> list[ContactMerge]:
    stmt = select(ContactMerge).where(where).order_by(ContactMerge.at, ContactMerge.id)
    return list((await session.scalars(stmt)).all())
