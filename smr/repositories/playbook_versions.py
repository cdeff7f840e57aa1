"""Stored playbook versions (source text by content hash)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from smr.models import PlaybookVersion, table_of
from smr.repositories._sql import insert_ignoring_conflicts, one_of


async def remember(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert_ignoring_conflicts(session, table_of(PlaybookVersion)), rows)


async def fetch(session: AsyncSession, versions: Iterable[str]) -> Sequence[PlaybookVersion]:
    wanted = list(set(versions))
    if not wanted:
        return []
    stmt = select(PlaybookVersion).where(one_of(session, PlaybookVersion.version, wanted))
    return (await session.scalars(stmt)).all()
