"""Group welcome templates: what WeCom has for each playbook's ``group_welcome``.

A template is acted on by one process at a time: ``claim`` sets a lease with a conditional
UPDATE and a rowcount check (both backends), ``finish`` writes the outcome and drops the lease.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from smr.models import GroupWelcomeStatus, GroupWelcomeTemplate, table_of
from smr.repositories import _claims as claims
from smr.repositories._sql import insert_ignoring_conflicts

Row = GroupWelcomeTemplate
_TABLE = table_of(Row)


@dataclass(frozen=True)
class StoredTemplate:
    playbook_id: str
    status: GroupWelcomeStatus
    template_id: str | None
    content_hash: str | None
    attempts: int
    last_error: str | None
    retry_at: datetime | None
    synced_at: datetime | None


async def declare(session: AsyncSession, playbook_ids: Sequence[str], *, now: datetime) -> None:
    """Insert a ``pending`` row for each playbook not stored yet (others are left as is)."""
    rows = [
        {
            "playbook_id": playbook_id,
            "status": GroupWelcomeStatus.PENDING.value,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        for playbook_id in playbook_ids
    ]
    if rows:
        await session.execute(insert_ignoring_conflicts(session, table_of(Row)), rows)


async def stored(
    session: AsyncSession, playbook_ids: Sequence[str] | None = None
) -> list[StoredTemplate]:
    """Every stored template (or those of ``playbook_ids``), by playbook id."""
    stmt = select(Row).order_by(Row.playbook_id)
    if playbook_ids is not None:
        stmt = stmt.where(Row.playbook_id.in_(list(playbook_ids)))
    return [_stored(row) for row in await session.scalars(stmt)]


def _stored(row: GroupWelcomeTemplate) -> StoredTemplate:
    return StoredTemplate(
        playbook_id=row.playbook_id,
        status=GroupWelcomeStatus(row.status),
        template_id=row.template_id,
        content_hash=row.content_hash,
        attempts=row.attempts,
        last_error=row.last_error,
        retry_at=row.retry_at,
        synced_at=row.synced_at,
    )


async def claim(session: AsyncSession, playbook_id: str, *, now: datetime, until: datetime) -> bool:
    """Lease the template until ``until``; False when another process holds a lease on it."""
    return await claims.lease_one(session, _TABLE, playbook_id, now=now, until=until)


async def finish(session: AsyncSession, playbook_id: str, values: dict[str, Any]) -> None:
    """Write a template's outcome and release its lease."""
    await claims.release_one(session, _TABLE, playbook_id, values)
