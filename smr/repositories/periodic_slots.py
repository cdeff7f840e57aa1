"""Periodic slots: a job that must run once per slot (a day, an hour) however many workers
tick. Whoever inserts ``(name, slot_at)`` runs the job; the others find the row there."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from smr.models import PeriodicSlot, table_of
from smr.repositories._bulk import insert_new

_SLOTS = table_of(PeriodicSlot)


async def take(session: AsyncSession, name: str, slot_at: datetime, *, now: datetime) -> bool:
    """Claim the slot; True when this call inserted it (the caller runs the job), False when
    another worker (or an earlier run of this one) already had."""
    row = {"name": name, "slot_at": slot_at, "taken_at": now}
    return bool(await insert_new(session, _SLOTS, [row], returning=["name"]))


async def give_back(session: AsyncSession, name: str, slot_at: datetime) -> None:
    """Release a slot whose job failed, so that a later tick (of any worker) runs it again."""
    await session.execute(
        delete(PeriodicSlot).where(PeriodicSlot.name == name, PeriodicSlot.slot_at == slot_at)
    )
