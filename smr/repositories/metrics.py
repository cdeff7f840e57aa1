"""The counts ``GET /metrics`` reports, read from the database so that every process's work
shows (API, workers): rows by status, and how far behind the oldest due row is.

Each query is served by an index that starts with ``status``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from smr.models import CronSlot, Delivery, Run

#: Every status of each table, reported at 0 when no row has it, so a series exists from the start.
STATUSES = {
    "deliveries": (
        "scheduled",
        "sending",
        "awaiting",
        "sent",
        "skipped",
        "failed",
        "cancelled",
        "uncertain",
    ),
    "runs": ("active", "waiting", "completed", "exited", "failed", "cancelled"),
    "cron_slots": ("pending", "running", "done", "missed", "skipped"),
}


async def by_status(session: AsyncSession) -> dict[str, dict[str, int]]:
    """Table → status → rows, for deliveries, runs and cron slots."""
    found: dict[str, dict[str, int]] = {}
    for name, model in (("deliveries", Delivery), ("runs", Run), ("cron_slots", CronSlot)):
        stmt = select(model.status, func.count()).group_by(model.status)
        counts = dict.fromkeys(STATUSES[name], 0)
        counts.update({status: int(n) for status, n in await session.execute(stmt)})
        found[name] = counts
    return found


async def oldest_due(session: AsyncSession, *, now: datetime) -> dict[str, datetime | None]:
    """When the oldest delivery still to send and the oldest run still to wake fell due."""
    delivery = select(func.min(Delivery.due_at)).where(
        Delivery.status == "scheduled", Delivery.due_at <= now
    )
    run = select(func.min(Run.wake_at)).where(Run.status == "waiting", Run.wake_at <= now)
    return {
        "deliveries": await session.scalar(delivery),
        "runs": await session.scalar(run),
    }
