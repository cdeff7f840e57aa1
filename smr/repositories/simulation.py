"""Reads over a whole simulation database: a scratch database that holds one simulated scenario,
never the service's own."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from smr.models import Delivery, Event, Run, TraceEntry


async def due_times(session: AsyncSession) -> tuple[datetime | None, datetime | None]:
    """The earliest time a waiting run wakes, and a scheduled delivery falls due."""
    wake = await session.scalar(select(func.min(Run.wake_at)).where(Run.status == "waiting"))
    due = await session.scalar(
        select(func.min(Delivery.due_at)).where(Delivery.status == "scheduled")
    )
    return wake, due


async def events(session: AsyncSession) -> Sequence[Event]:
    return (await session.scalars(select(Event).order_by(Event.received_at, Event.id))).all()


async def deliveries(session: AsyncSession) -> Sequence[Delivery]:
    return (await session.scalars(select(Delivery).order_by(Delivery.id))).all()


async def trace(session: AsyncSession) -> list[tuple[TraceEntry, str]]:
    """Every trace entry with the playbook of its run, in the order they were written."""
    stmt = (
        select(TraceEntry, Run.playbook_id)
        .join(Run, Run.id == TraceEntry.run_id)
        .order_by(TraceEntry.id)
    )
    return [(entry, playbook_id) for entry, playbook_id in await session.execute(stmt)]
