"""Deliveries a vendor accepted but has not delivered yet (status ``awaiting``).

An awaiting delivery keeps the vendor's reference in ``vendor_ref`` and the time of its next
check in ``due_at``; a checker claims due ones by pushing ``due_at`` a lease ahead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from smr.models import Delivery, DeliveryAttempt, table_of
from smr.repositories._sql import claim, one_of, update_many

_CHECKED_COLUMNS = ("status", "skip_reason", "due_at", "sent_at", "last_error", "updated_at")


async def set_vendor_refs(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Record ``{id, vendor_ref}`` on deliveries that just became ``awaiting``."""
    await update_many(
        session,
        table_of(Delivery),
        rows,
        columns=("vendor_ref",),
        only_if=("status", ["awaiting"]),
    )


async def claim_due(
    session: AsyncSession, *, channel: str, now: datetime, lease: timedelta, limit: int
) -> Sequence[Row[Any]]:
    """Claim up to ``limit`` awaiting deliveries of ``channel`` whose check is due: their
    ``due_at`` moves ``lease`` ahead, so no other worker checks them meanwhile."""
    table = table_of(Delivery)
    due = and_(table.c.status == "awaiting", table.c.due_at <= now, table.c.channel == channel)
    values = {"due_at": now + lease, "updated_at": now}
    return await claim(
        session, table, where=due, order_by=table.c.due_at, limit=limit, values=values
    )


async def accepted_at(session: AsyncSession, ids: Iterable[str]) -> dict[str, datetime]:
    """delivery id → when the vendor accepted it (its ``awaiting`` attempt)."""
    wanted = list(set(ids))
    if not wanted:
        return {}
    stmt = (
        select(DeliveryAttempt.delivery_id, func.max(DeliveryAttempt.at))
        .where(
            one_of(session, DeliveryAttempt.delivery_id, wanted),
            DeliveryAttempt.outcome == "awaiting",
        )
        .group_by(DeliveryAttempt.delivery_id)
    )
    return {str(row[0]): row[1] for row in await session.execute(stmt)}


async def finish(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Record what a check found: rows of {id, status, skip_reason, due_at, sent_at, …}; a
    delivery no longer awaiting (cancelled meanwhile) is left alone."""
    await update_many(
        session,
        table_of(Delivery),
        rows,
        columns=_CHECKED_COLUMNS,
        only_if=("status", ["awaiting"]),
    )
