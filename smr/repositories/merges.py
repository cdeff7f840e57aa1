"""Contact merges: a contact's rows moved to the survivor, the tombstone it leaves, and the
merge's record (``smr.services.merging``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Subquery,
    Text,
    bindparam,
    case,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
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
from smr.repositories._sql import dialect_name, one_of
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
_MOVED: dict[str, Column[Any]] = {
    name: table_of(model).c.contact_id
    for name, model in [
        ("identities", ContactIdentity),
        ("events", Event),
        ("runs", Run),
        ("deliveries", Delivery),
        ("outbox", MockOutbox),
        ("group_memberships", GroupMember),
    ]
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
        for contact_id, count in (await _repoint(session, column, survivors)).items():
            moved[contact_id][name] = count
    # Earlier merges into these, and their tombstones, now name the survivor: one hop finds it.
    await _repoint(session, table_of(ContactMerge).c.survivor_id, survivors)
    await _repoint(session, table_of(Contact).c.merged_into, survivors)
    # Their memberships go: the survivors' are evaluated again with what they took in.
    await session.execute(
        delete(SegmentMember).where(one_of(session, SegmentMember.contact_id, merged))
    )
    await _tombstones(session, survivors, now=now)
    return moved


async def _repoint(
    session: AsyncSession, column: Column[Any], survivors: Mapping[str, str]
) -> Counter[str]:
    """Set ``column`` to the survivor where it named a merged contact; how many rows of each
    merged contact changed.

    PostgreSQL: one UPDATE … FROM the pairs as arrays, returning each changed row's merged id
    (one statement text whatever the count, so it is prepared once). SQLite, whose RETURNING
    cannot name the FROM list: a count, then an UPDATE with a CASE over the pairs."""
    if dialect_name(session) == "postgresql":
        given = _pairs()
        stmt = (
            update(column.table)
            .where(column == given.c.merged)
            .values({column.key: given.c.survivor})
            .returning(given.c.merged)
        )
        rows = await session.execute(stmt, _pair_params(survivors))
        return Counter(str(merged) for (merged,) in rows)
    wanted = one_of(session, column, list(survivors))
    counted = select(column, func.count()).where(wanted).group_by(column)
    found = Counter({str(cid): int(count) for cid, count in await session.execute(counted)})
    case_of = case(dict(survivors), value=column)
    await session.execute(update(column.table).where(wanted).values({column.key: case_of}))
    return found


async def _tombstones(
    session: AsyncSession, survivors: Mapping[str, str], *, now: datetime
) -> None:
    contacts = table_of(Contact)
    blanked = {
        **PERSON_BLANKED,
        "kind": ContactKind.MERGED,
        "orders": 0,
        "total_spent": Decimal(0),
        "first_order_at": None,
        "last_order_at": None,
        "monthly_spend": {},
        "updated_at": now,
    }
    if dialect_name(session) == "postgresql":
        given = _pairs()
        stmt = (
            update(contacts)
            .where(contacts.c.id == given.c.merged)
            .values({**blanked, "merged_into": given.c.survivor})
        )
        await session.execute(stmt, _pair_params(survivors))
        return
    merged_into = case(dict(survivors), value=contacts.c.id)
    wanted = one_of(session, contacts.c.id, list(survivors))
    await session.execute(
        update(contacts).where(wanted).values({**blanked, "merged_into": merged_into})
    )


@cache
def _pairs() -> Subquery:
    """The merges as rows (``merged``, ``survivor``), from two array parameters."""
    return select(
        func.unnest(bindparam("merged", type_=ARRAY(Text()))).label("merged"),
        func.unnest(bindparam("survivor", type_=ARRAY(Text()))).label("survivor"),
    ).subquery("pairs")


def _pair_params(survivors: Mapping[str, str]) -> dict[str, list[str]]:
    return {"merged": list(survivors), "survivor": list(survivors.values())}


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
