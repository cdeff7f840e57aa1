"""The mock channel's persisted outbox."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from smr.models import MockOutbox, table_of
from smr.repositories._bulk import insert_new


async def record(session: AsyncSession, rows: list[dict[str, Any]]) -> set[str]:
    """Store mock sends; returns the delivery ids that were new (not a deduplicated resend)."""
    inserted = await insert_new(session, table_of(MockOutbox), rows, returning=["delivery_id"])
    return {delivery_id for (delivery_id,) in inserted}


async def list_outbox(
    session: AsyncSession,
    *,
    contact_id: str | None,
    before: str | None,
    since: datetime | None,
    limit: int,
) -> Sequence[MockOutbox]:
    stmt = select(MockOutbox).order_by(MockOutbox.delivery_id.desc()).limit(limit + 1)
    if contact_id:
        stmt = stmt.where(MockOutbox.contact_id == contact_id)
    if before is not None:
        stmt = stmt.where(MockOutbox.delivery_id < before)
    if since is not None:
        stmt = stmt.where(MockOutbox.sent_at >= since)
    return (await session.scalars(stmt)).all()
