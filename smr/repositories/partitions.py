"""Partition leases of the event log and the processors sharing them (as Kafka's consumer
groups do): each partition has at most one owner whose lease has not run out."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from smr.eventlog import PARTITIONS
from smr.models import LogMember, LogPartition, table_of
from smr.repositories._sql import dialect_name, insert_ignoring_conflicts, one_of


async def create(session: AsyncSession) -> None:
    """The partitions' rows, for a database built without the migrations (which add them)."""
    stmt = insert_ignoring_conflicts(session, table_of(LogPartition))
    await session.execute(stmt, [{"partition": p} for p in range(PARTITIONS)])


async def seen(session: AsyncSession, member: str, *, now: datetime) -> None:
    """Record that ``member`` is alive."""
    stmt = insert_ignoring_conflicts(session, table_of(LogMember))
    await session.execute(stmt, {"id": member, "seen_at": now})
    await session.execute(update(LogMember).where(LogMember.id == member).values(seen_at=now))


async def alive(session: AsyncSession, *, since: datetime) -> int:
    """How many members were seen since ``since``."""
    count = await session.scalar(
        select(func.count()).select_from(LogMember).where(LogMember.seen_at >= since)
    )
    return count or 0


async def forget(session: AsyncSession, *, seen_before: datetime) -> None:
    """Drop the members not seen since ``seen_before`` (their partitions' leases ran out)."""
    await session.execute(delete(LogMember).where(LogMember.seen_at < seen_before))


async def renew(
    session: AsyncSession,
    member: str,
    *,
    until: datetime,
    within: Collection[int] | None = None,
) -> list[int]:
    """Extend the leases ``member`` holds (of the partitions ``within``, or all) to ``until``;
    the partitions it holds of those.

    In the transaction that processes a batch, this comes first and fences it: on PostgreSQL
    the rows stay locked until the transaction ends, so a partition cannot change owner while
    its events are being processed, and a lease lost in between is not renewed here.
    """
    stmt = update(LogPartition).where(LogPartition.owner == member)
    if within is not None:
        stmt = stmt.where(one_of(session, LogPartition.partition, list(within)))
    stmt = stmt.values(lease_until=until).returning(LogPartition.partition)
    return sorted(p for (p,) in await session.execute(stmt))


async def claim(
    session: AsyncSession, member: str, *, count: int, now: datetime, until: datetime
) -> list[int]:
    """Take up to ``count`` partitions nobody holds (no owner, or a lease run out)."""
    if count <= 0:
        return []
    free = (
        select(LogPartition.partition)
        .where(or_(LogPartition.owner.is_(None), LogPartition.lease_until < now))
        .order_by(LogPartition.partition)
        .limit(count)
    )
    if dialect_name(session) == "postgresql":
        # A partition whose row is locked is being renewed by its owner: not free.
        free = free.with_for_update(skip_locked=True)
    stmt = (
        update(LogPartition)
        .where(LogPartition.partition.in_(free.scalar_subquery()))
        .values(owner=member, lease_until=until)
        .returning(LogPartition.partition)
    )
    return sorted(p for (p,) in await session.execute(stmt))


async def release(session: AsyncSession, member: str, partitions: Collection[int]) -> None:
    """Give up ``partitions`` (those ``member`` holds)."""
    if not partitions:
        return
    await session.execute(
        update(LogPartition)
        .where(
            LogPartition.owner == member, one_of(session, LogPartition.partition, list(partitions))
        )
        .values(owner=None, lease_until=None)
    )


async def leave(session: AsyncSession, member: str) -> None:
    """Give up every partition ``member`` holds, and its membership."""
    await session.execute(
        update(LogPartition)
        .where(LogPartition.owner == member)
        .values(owner=None, lease_until=None)
    )
    await session.execute(delete(LogMember).where(LogMember.id == member))
