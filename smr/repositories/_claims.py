"""Claiming rows for a worker: deliveries, runs and cron slots a worker takes under a lease.

A claim statement is built once per dialect by its repository and takes its values as named
parameters (``now``, ``lease_end``, and ``limit``, which ``claim`` sets).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, Integer, Table, bindparam, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Update

from smr.models import UTCDateTime
from smr.repositories import Record
from smr.repositories._sql import _key


def now() -> BindParameter[Any]:
    """The claim's time (parameter ``now``)."""
    return bindparam("now", type_=UTCDateTime())


def lease_end() -> BindParameter[Any]:
    """When the claim's lease ends (parameter ``lease_end``)."""
    return bindparam("lease_end", type_=UTCDateTime())


def claim_statement(
    table: Table,
    *,
    where: ColumnElement[bool],
    order_by: ColumnElement[Any] | tuple[ColumnElement[Any], ...],
    values: Mapping[str, Any],
) -> Update:
    """Take up to ``limit`` rows matching ``where`` (oldest by ``order_by`` first, a tuple
    sorting by its columns in turn), set ``values`` on them and return every column.

    PostgreSQL locks the candidates FOR NO KEY UPDATE SKIP LOCKED, so concurrent workers take
    disjoint rows without waiting for each other (and foreign-key checks against them do not
    wait either). SQLite serialises writers (BEGIN IMMEDIATE) and the repeated condition in
    the UPDATE makes a row claimable once.
    """
    primary = _key(table)
    # A materialised CTE is evaluated once: an IN (subquery … LIMIT) may be re-run per row by
    # the planner and then claim more than ``limit`` rows.
    picked = (
        select(primary)
        .where(where)
        .order_by(*(order_by if isinstance(order_by, tuple) else (order_by,)))
        .limit(bindparam("limit", type_=Integer()))
        .with_for_update(skip_locked=True, key_share=True)
        .cte("picked")
        .prefix_with("MATERIALIZED")
    )
    return (
        update(table)
        .where(primary.in_(select(picked.c[primary.name])), where)
        .values(dict(values))
        .returning(*table.c)
    )


async def claim(
    session: AsyncSession, stmt: Update, params: Mapping[str, Any], *, limit: int
) -> list[Record]:
    """Run a ``claim_statement`` for at most ``limit`` rows; the rows claimed."""
    if limit <= 0:
        return []
    result = await session.execute(stmt, {**params, "limit": limit})
    return records(result.mappings())


def records(rows: Iterable[RowMapping]) -> list[Record]:
    """Rows a worker claimed (or took over), as records."""
    return [Record(**row) for row in rows]


async def claim_lost_then_due(
    session: AsyncSession, lost: Update, due: Update, params: Mapping[str, Any], *, limit: int
) -> list[Record]:
    """Claim rows whose worker died (``lost``: lease expired, oldest lease first), then due
    rows, ``limit`` in all. Two statements, each an ordered index range, rather than one OR
    that would sort the whole backlog on every claim."""
    rows = await claim(session, lost, params, limit=limit)
    return rows + await claim(session, due, params, limit=limit - len(rows))


async def lease_one(
    session: AsyncSession, table: Table, key: Any, *, now: datetime, until: datetime
) -> bool:
    """Lease the row of ``table`` keyed ``key`` (its ``lease_until``) until ``until``; False
    when another process holds a lease on it that has not run out."""
    lease = table.c.lease_until
    stmt = (
        update(table)
        .where(_key(table) == key, or_(lease.is_(None), lease < now))
        .values(lease_until=until)
    )
    result = await session.execute(stmt)
    return bool(getattr(result, "rowcount", 0) == 1)


async def release_one(
    session: AsyncSession, table: Table, key: Any, values: Mapping[str, Any]
) -> None:
    """Write ``values`` to the row keyed ``key`` and release its lease."""
    stmt = update(table).where(_key(table) == key).values(**values, lease_until=None)
    await session.execute(stmt)
