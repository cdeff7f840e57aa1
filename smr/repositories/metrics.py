"""The counts ``GET /metrics`` reports, read from the database so that every process's work
shows (API, workers): rows by status, and how far behind the oldest due row is.

Each query is served by an index that starts with ``status``.
"""

from __future__ import annotations

from datetime import datetime
from typing import get_args

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from smr.models import CronSlot, CronSlotStatus, Delivery, Run
from smr.statuses import DeliveryStatus, RunStatus

#: Every status of each table, reported at 0 when no row has it, so a series exists from the start.
STATUSES: dict[str, tuple[str, ...]] = {
    "deliveries": tuple(DeliveryStatus),
    "runs": tuple(RunStatus),
    "cron_slots": get_args(CronSlotStatus),
}


async def by_status(session: AsyncSession) -> dict[str, dict[str, int]]:
    """Table → status → rows, for deliveries, runs and cron slots."""
    found: dict[str, dict[str, int]] = {}
    for name, model in (("deliveries", Delivery), ("runs", Run), ("cron_slots", CronSlot)):
        stmt = select(model.status, func.count()).group_by(model.status)
        counts = dict.fromkeys(map(str, STATUSES[name]), 0)
        counts.update({str(status): int(n) for status, n in await session.execute(stmt)})
        found[name] = counts
    return found


async def earliest_due(
    session: AsyncSession, *, until: datetime | None = None
) -> dict[str, datetime | None]:
    """When the earliest scheduled delivery and the earliest waiting run fall (or fell) due;
    with ``until``, only among those due by then (how far behind the oldest due row is)."""
    delivery = select(func.min(Delivery.due_at)).where(Delivery.status == DeliveryStatus.SCHEDULED)
    run = select(func.min(Run.wake_at)).where(Run.status == RunStatus.WAITING)
    if until is not None:
        delivery, run = delivery.where(Delivery.due_at <= until), run.where(Run.wake_at <= until)
    return {
        "deliveries": await session.scalar(delivery),
        "runs": await session.scalar(run),
    }
