"""Segment memberships by segment (counts, previews, audiences) and the definitions filled."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from smr.models import Contact, SegmentMember, SegmentVersion, table_of
from smr.repositories._bulk import insert_new
from smr.repositories._sql import one_of

_MEMBERS = table_of(SegmentMember)


@dataclass(frozen=True)
class Membership:
    segment_id: str
    contact_id: str


async def enter(session: AsyncSession, rows: Sequence[Membership], *, since: datetime) -> None:
    """Add memberships (one already there stays as it was)."""
    ordered = sorted(rows, key=lambda m: (m.segment_id, m.contact_id))
    values = [
        {"segment_id": m.segment_id, "contact_id": m.contact_id, "since": since} for m in ordered
    ]
    if values:
        await insert_new(session, _MEMBERS, values, returning=["segment_id"])


async def leave(session: AsyncSession, rows: Sequence[Membership]) -> None:
    pairs = sorted({(m.segment_id, m.contact_id) for m in rows})
    if pairs:
        key = tuple_(SegmentMember.segment_id, SegmentMember.contact_id)
        await session.execute(delete(SegmentMember).where(key.in_(pairs)))


async def drop(session: AsyncSession, segment_ids: Sequence[str]) -> None:
    """Forget segments no longer defined: their members and their filled version."""
    if segment_ids:
        ids = list(segment_ids)
        await session.execute(delete(SegmentMember).where(SegmentMember.segment_id.in_(ids)))
        await session.execute(delete(SegmentVersion).where(SegmentVersion.segment_id.in_(ids)))


async def counts(session: AsyncSession) -> dict[str, int]:
    """Segment id → its members (segments without any are absent)."""
    stmt = select(SegmentMember.segment_id, func.count()).group_by(SegmentMember.segment_id)
    return {segment: int(count) for segment, count in await session.execute(stmt)}


async def count(session: AsyncSession, segment_id: str) -> int:
    stmt = (
        select(func.count())
        .select_from(SegmentMember)
        .where(SegmentMember.segment_id == segment_id)
    )
    return int(await session.scalar(stmt) or 0)


async def members(
    session: AsyncSession, segment_id: str, *, before: str | None, limit: int
) -> list[tuple[Contact, datetime]]:
    """Up to ``limit`` members before the contact id ``before``, newest contact first, each
    with since when it is a member."""
    stmt = (
        select(Contact, SegmentMember.since)
        .join(SegmentMember, SegmentMember.contact_id == Contact.id)
        .where(SegmentMember.segment_id == segment_id)
        .order_by(SegmentMember.contact_id.desc())
        .limit(limit)
    )
    if before is not None:
        stmt = stmt.where(SegmentMember.contact_id < before)
    return [(contact, since) for contact, since in await session.execute(stmt)]


async def filled(session: AsyncSession) -> dict[str, str]:
    """Segment id → the version of its definition last filled in whole."""
    rows = await session.execute(select(SegmentVersion.segment_id, SegmentVersion.version))
    return {str(segment): str(version) for segment, version in rows}


async def mark_filled(session: AsyncSession, versions: dict[str, str], *, now: datetime) -> None:
    """Record these definitions as filled in whole."""
    if not versions:
        return
    ids = list(versions)
    await session.execute(
        delete(SegmentVersion).where(one_of(session, SegmentVersion.segment_id, ids))
    )
    rows: list[dict[str, Any]] = [
        {"segment_id": sid, "version": version, "filled_at": now}
        for sid, version in versions.items()
    ]
    await session.execute(table_of(SegmentVersion).insert(), rows)
