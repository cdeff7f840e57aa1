"""Stored events and their evaluations."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from smr.models import Event, table_of
from smr.repositories._sql import insert_ignoring_conflicts, one_of


async def existing(session: AsyncSession, *, source: str, keys: Iterable[str]) -> dict[str, str]:
    """Idempotency key → stored event id, for the keys this source already sent."""
    wanted = list(set(keys))
    if not wanted:
        return {}
    stmt = select(Event.key, Event.id).where(
        Event.source == source, one_of(session, Event.key, wanted)
    )
    return dict((await session.execute(stmt)).all())


async def insert_new(session: AsyncSession, rows: list[dict[str, Any]]) -> set[str]:
    """Insert events; returns the ids actually stored (a concurrent duplicate is not)."""
    if not rows:
        return set()
    stmt = insert_ignoring_conflicts(session, table_of(Event)).returning(Event.id)
    result = await session.execute(stmt, rows)
    return set(result.scalars().all())


async def get(session: AsyncSession, event_id: str) -> Event | None:
    return await session.get(Event, event_id)


async def by_keys(session: AsyncSession, pairs: list[tuple[str, str]]) -> list[Event]:
    stmt = select(Event).where(tuple_(Event.source, Event.key).in_(pairs))
    return list((await session.scalars(stmt)).all())


async def by_ids(session: AsyncSession, ids: Iterable[str | None]) -> dict[str, Event]:
    wanted = [i for i in set(ids) if i]
    if not wanted:
        return {}
    rows = await session.scalars(select(Event).where(one_of(session, Event.id, wanted)))
    return {row.id: row for row in rows}
