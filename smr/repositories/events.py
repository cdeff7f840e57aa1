"""Stored events and their evaluations."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from smr.models import Event, table_of
from smr.repositories._bulk import insert_new
from smr.repositories._sql import any_of, dialect_name, one_of


async def existing(session: AsyncSession, *, source: str, keys: Iterable[str]) -> dict[str, str]:
    """Idempotency key → stored event id, for the keys this source already sent."""
    wanted = list(set(keys))
    if not wanted:
        return {}
    stmt = _existing(dialect_name(session))
    rows = await session.execute(stmt, {"source": source, "keys": wanted})
    return {row.key: row.id for row in rows}


@cache
def _existing(dialect: str) -> Select[str, str]:
    events = table_of(Event)
    return select(events.c.key, events.c.id).where(
        events.c.source == bindparam("source"), any_of(dialect, events.c.key, "keys")
    )


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


async def insert_imported(session: AsyncSession, rows: list[dict[str, Any]]) -> set[str]:
    """Store events an import brings (historical orders), processed already; the keys of those
    stored now (one whose source and key are stored already is not: an import run again)."""
    if not rows:
        return set()
    ordered = sorted(rows, key=lambda r: (r["source"], r["key"]))
    inserted = await insert_new(session, table_of(Event), ordered, returning=["key"])
    return {key for (key,) in inserted}
