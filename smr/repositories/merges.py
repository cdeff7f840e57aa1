"""Contact merges: a contact's rows moved to the survivor, the tombstone it leaves, and the
merge's record (``smr.services.merging``)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, case, delete, func, select, update
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
from smr.repositories.contacts import PERSON_BLANKED
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


#: The columns that name a contact, in the tables whose rows move to the survivor (by the
#: name the merge's record counts them under).
_MOVED = {
    "identities": ContactIdentity.contact_id,
    "events": Event.contact_id,
    "runs": Run.contact_id,
    "deliveries": Delivery.contact_id,
    "outbox": MockOutbox.contact_id,
    "group_memberships": GroupMember.contact_id,
}


async def move(
    session: AsyncSession, survivors: Mapping[str, str], *, now: datetime
) -> dict[str, dict[str, int]]:
    """Move every row of each merged contact (``survivors``: merged id → survivor id) to its
    survivor and leave it a tombstone (kind ``merged``, ``merged_into`` the survivor, nothing
    of the person kept: the survivor holds it now); per merged id, how many rows of each
    table moved. All the contacts are locked. A statement per table, whatever the count."""
    merged = list(survivors)
    moved: dict[str, dict[str, int]] = {cid: dict.fromkeys(_MOVED, 0) for cid in merged}
    for name, column in _MOVED.items():
        counted = select(column, func.count()).where(one_of(session, column, merged))
        for contact_id, count in await session.execute(counted.group_by(column)):
            moved[str(contact_id)][name] = int(count)
        await session.execute(_repointed(session, column, survivors))
    # Earlier merges into these, and their tombstones, now name the survivor: one hop finds it.
    await session.execute(_repointed(session, ContactMerge.survivor_id, survivors))
    await session.execute(_repointed(session, Contact.merged_into, survivors))
    # Their memberships go: the survivors' are evaluated again with what they took in.
    await session.execute(
        delete(SegmentMember).where(one_of(session, SegmentMember.contact_id, merged))
    )
    await session.execute(_tombstones(session, survivors, now=now))
    return moved


def _repointed(session: AsyncSession, column: Any, survivors: Mapping[str, str]) -> Any:
    """``column`` = the survivor, where it named a merged contact."""
    survivor = case(dict(survivors), value=column)
    return (
        update(column.class_)
        .where(one_of(session, column, list(survivors)))
        .values({column.key: survivor})
    )


def _tombstones(session: AsyncSession, survivors: Mapping[str, str], *, now: datetime) -> Any:
    return (
        update(Contact)
        .where(one_of(session, Contact.id, list(survivors)))
        .values(
            {
                **PERSON_BLANKED,
                "kind": ContactKind.MERGED,
                "merged_into": case(dict(survivors), value=Contact.id),
                "orders": 0,
                "total_spent": Decimal(0),
                "first_order_at": None,
                "last_order_at": None,
                "monthly_spend": {},
                "updated_at": now,
            }
        )
    )


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
