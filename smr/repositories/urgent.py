"""Claims restricted to a few channels, for sends that cannot wait for the next tick."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_
from sqlalchemy.ext.asyncio import AsyncSession

from smr.models import Delivery, table_of
from smr.repositories._sql import claim


async def claim_due_on(
    session: AsyncSession,
    *,
    channels: Collection[str],
    now: datetime,
    lease: timedelta,
    limit: int,
) -> Sequence[Row[Any]]:
    """Like ``deliveries.claim_due``, for scheduled deliveries of ``channels`` only."""
    if not channels:
        return []
    table = table_of(Delivery)
    due = and_(
        table.c.status == "scheduled", table.c.due_at <= now, table.c.channel.in_(list(channels))
    )
    values = {
        "status": "sending",
        "lease_until": now + lease,
        "attempts": table.c.attempts + 1,
        "updated_at": now,
    }
    return await claim(
        session, table, where=due, order_by=table.c.due_at, limit=limit, values=values
    )
