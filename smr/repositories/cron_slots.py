"""Cron slots: one row per firing of a schedule playbook, claimed by one worker at a time.

Statuses: ``pending`` (due, nobody working on it), ``running`` (a worker holds the lease and
fans out from ``cursor``), ``done``, ``missed`` (came due while nobody could fire it) and
``skipped`` (its playbook was disabled or removed before it fired).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Update

from smr.models import CronSlot, PlaybookVersion, table_of
from smr.repositories import _claims as claims
from smr.repositories._sql import insert_ignoring_conflicts, is_one_of, one_of

CLAIMABLE = ("pending", "running")


class LeaseLost(Exception):
    """Another worker took over this cron slot (our lease expired); this batch is rolled back."""


async def insert_slots(session: AsyncSession, rows: list[dict[str, Any]]) -> set[str]:
    """Insert slots; a (playbook, slot time) that already exists is left alone.

    Returns the ids of the rows this call created.
    """
    if not rows:
        return set()
    table = table_of(CronSlot)
    ordered = sorted(rows, key=lambda r: (r["playbook_id"], r["slot_at"]))
    stmt = insert_ignoring_conflicts(session, table).returning(table.c.id)
    return {slot_id for (slot_id,) in (await session.execute(stmt, ordered)).all()}


async def latest_slots(session: AsyncSession, playbook_ids: Iterable[str]) -> dict[str, datetime]:
    """playbook id → the time of its most recent recorded slot (whatever its status)."""
    wanted = list(set(playbook_ids))
    if not wanted:
        return {}
    stmt = (
        select(CronSlot.playbook_id, func.max(CronSlot.slot_at).label("at"))
        .where(one_of(session, CronSlot.playbook_id, wanted))
        .group_by(CronSlot.playbook_id)
    )
    return {row.playbook_id: row.at for row in await session.execute(stmt)}


async def known_since(session: AsyncSession, playbook_ids: Iterable[str]) -> dict[str, datetime]:
    """playbook id → when any version of it was first loaded."""
    wanted = list(set(playbook_ids))
    if not wanted:
        return {}
    stmt = (
        select(PlaybookVersion.playbook_id, func.min(PlaybookVersion.loaded_at).label("at"))
        .where(one_of(session, PlaybookVersion.playbook_id, wanted))
        .group_by(PlaybookVersion.playbook_id)
    )
    return {row.playbook_id: row.at for row in await session.execute(stmt)}


async def claim_one(session: AsyncSession, *, now: datetime, lease: timedelta) -> CronSlot | None:
    """Take the oldest pending slot, or a running one whose worker's lease expired; it becomes
    ``running`` with a lease until ``now + lease``."""
    params = {"now": now, "lease_end": now + lease}
    rows = await claims.claim(session, _claim_one(), params, limit=1)
    if not rows:
        return None
    return await session.get(CronSlot, rows[0].id, populate_existing=True)


@cache
def _claim_one() -> Update:
    table = table_of(CronSlot)
    free = or_(table.c.lease_until.is_(None), table.c.lease_until < claims.now())
    claimable = and_(is_one_of(table.c.status, CLAIMABLE), free)
    values = {"status": "running", "lease_until": claims.lease_end(), "updated_at": claims.now()}
    return claims.claim_statement(table, where=claimable, order_by=table.c.slot_at, values=values)


async def advance(
    session: AsyncSession,
    slot_id: str,
    *,
    held: datetime,
    at: str | None,
    cursor: str | None,
    runs_started: int,
    status: str,
    lease_until: datetime | None,
    now: datetime,
) -> None:
    """Move a running slot's cursor from ``at`` to ``cursor``, add to its run count and set
    its status and lease, provided the lease is still ``held`` and the cursor still ``at``.
    Raises LeaseLost otherwise.

    On PostgreSQL the slot's row is locked first, which waits for a concurrent transaction
    that moved the cursor to end: the guard then reads what that one committed (an UPDATE
    alone would judge the row as it was before, and not wait)."""
    table = table_of(CronSlot)
    lock = select(table.c.id).where(table.c.id == slot_id).with_for_update(key_share=True)
    await session.execute(lock)
    stmt = (
        update(table)
        .where(
            table.c.id == slot_id,
            table.c.status == "running",
            table.c.lease_until == held,
            table.c.cursor.is_not_distinct_from(at),
        )
        .values(
            cursor=cursor,
            runs_started=table.c.runs_started + runs_started,
            status=status,
            lease_until=lease_until,
            updated_at=now,
        )
    )
    result: Any = await session.execute(stmt)
    if result.rowcount != 1:
        raise LeaseLost(f"cron slot {slot_id} is no longer ours")


async def list_slots(
    session: AsyncSession, *, playbook_id: str | None = None, limit: int = 100
) -> Sequence[CronSlot]:
    """Slots, most recent first."""
    stmt = select(CronSlot).order_by(CronSlot.slot_at.desc(), CronSlot.id.desc()).limit(limit)
    if playbook_id is not None:
        stmt = stmt.where(CronSlot.playbook_id == playbook_id)
    return (await session.scalars(stmt)).all()


async def by_ids(session: AsyncSession, ids: Iterable[str | None]) -> dict[str, CronSlot]:
    wanted = [i for i in set(ids) if i]
    if not wanted:
        return {}
    rows = await session.scalars(select(CronSlot).where(one_of(session, CronSlot.id, wanted)))
    return {row.id: row for row in rows}
