"""Deliveries a vendor accepted but has not delivered yet (status ``awaiting``).

An awaiting delivery keeps the vendor's reference in ``vendor_ref`` and the time of its next
check in ``due_at``; a checker claims due ones by pushing ``due_at`` a lease ahead.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Update

from smr.models import Delivery, DeliveryAttempt, table_of
from smr.repositories import Record
from smr.repositories import _claims as claims
from smr.repositories._bulk import update_many
from smr.repositories._sql import one_of
from smr.statuses import AttemptOutcome, DeliveryStatus

_CHECKED_COLUMNS = ("status", "skip_reason", "due_at", "sent_at", "last_error", "updated_at")


async def set_vendor_refs(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Record ``{id, vendor_ref}`` on deliveries that just became ``awaiting``."""
    await update_many(
        session,
        table_of(Delivery),
        rows,
        columns=("vendor_ref",),
        only_if=("status", [DeliveryStatus.AWAITING]),
    )


async def claim_due(
    session: AsyncSession, *, channel: str, now: datetime, lease: timedelta, limit: int
) -> list[Record]:
    """Claim up to ``limit`` awaiting deliveries of ``channel`` whose check is due: their
    ``due_at`` moves ``lease`` ahead, so no other worker checks them meanwhile."""
    params = {"on_channel": channel, "now": now, "lease_end": now + lease}
    return await claims.claim(session, _claim_due(), params, limit=limit)


@cache
def _claim_due() -> Update:
    table = table_of(Delivery)
    due = and_(
        table.c.status == DeliveryStatus.AWAITING,
        table.c.due_at <= claims.now(),
        table.c.channel == bindparam("on_channel", type_=table.c.channel.type),
    )
    values = {"due_at": claims.lease_end(), "updated_at": claims.now()}
    return claims.claim_statement(table, where=due, order_by=table.c.due_at, values=values)


async def accepted_at(session: AsyncSession, ids: Iterable[str]) -> dict[str, datetime]:
    """delivery id → when the vendor accepted it (its ``awaiting`` attempt)."""
    wanted = list(set(ids))
    if not wanted:
        return {}
    stmt = (
        select(DeliveryAttempt.delivery_id, func.max(DeliveryAttempt.at))
        .where(
            one_of(session, DeliveryAttempt.delivery_id, wanted),
            DeliveryAttempt.outcome == AttemptOutcome.AWAITING,
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
        only_if=("status", [DeliveryStatus.AWAITING]),
    )
