"""Dialect helpers shared by the repositories."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    ColumnElement,
    Row,
    Table,
    Text,
    any_,
    bindparam,
    cast,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.dml import Insert

from smr.errors import InvalidInput


def insert_ignoring_conflicts(session: AsyncSession, table: Table) -> Insert:
    """INSERT … ON CONFLICT DO NOTHING for the session's dialect."""
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    stmt: Insert = module.insert(table).on_conflict_do_nothing()
    return stmt


COPY_THRESHOLD = 8


async def insert_many(session: AsyncSession, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows in bulk: binary COPY on PostgreSQL for larger batches, otherwise multi-row
    INSERTs (RETURNING makes SQLAlchemy batch them with "insertmanyvalues" on every driver).

    Every row must carry the same keys.
    """
    if not rows:
        return
    if dialect_name(session) == "postgresql" and len(rows) >= COPY_THRESHOLD:
        await _copy(session, table, rows)
        return
    primary = next(iter(table.primary_key.columns))
    await session.execute(insert(table).returning(primary), rows)


async def _copy(session: AsyncSession, table: Table, rows: list[dict[str, Any]]) -> None:
    connection = await session.connection()
    dialect = connection.dialect
    columns = [table.c[name] for name in rows[0]]
    defaults = {c.name: _default(c) for c in table.c if c.name not in rows[0] and c.default}
    columns += [table.c[name] for name in defaults]
    rows = [{**row, **defaults} for row in rows] if defaults else rows
    # The column types' own bind processors (JSON serialisation, UTC conversion) keep COPY
    # byte-for-byte equivalent to an INSERT through SQLAlchemy.
    processors = [c.type._cached_bind_processor(dialect) for c in columns]
    records = [
        tuple(
            p(row[c.name]) if p else row[c.name] for c, p in zip(columns, processors, strict=True)
        )
        for row in rows
    ]
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    await driver.copy_records_to_table(
        table.name, records=records, columns=[c.name for c in columns]
    )


def _default(column: Column[Any]) -> Any:
    default: Any = column.default
    return default.arg(None) if default.is_callable else default.arg


def one_of(
    session: AsyncSession,
    column: ColumnElement[Any] | InstrumentedAttribute[Any],
    values: list[Any],
) -> ColumnElement[bool]:
    """``column IN values`` that PostgreSQL sees as one statement whatever the count
    (``= ANY($1)``), so its prepared-statement cache hits; SQLite gets a plain IN."""
    if dialect_name(session) == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(column.type)))
    return column.in_(values)


async def claim(
    session: AsyncSession,
    table: Table,
    *,
    where: ColumnElement[bool],
    order_by: ColumnElement[Any],
    limit: int,
    values: dict[str, Any],
) -> Sequence[Row[Any]]:
    """Atomically take up to ``limit`` rows matching ``where`` (oldest by ``order_by`` first)
    and set ``values`` on them; returns the claimed rows.

    PostgreSQL locks the candidates FOR UPDATE SKIP LOCKED, so concurrent workers take disjoint
    rows without waiting for each other. SQLite serialises writers (BEGIN IMMEDIATE) and the
    repeated condition in the UPDATE makes a row claimable once.
    """
    if limit <= 0:
        return []
    primary = next(iter(table.primary_key.columns))
    # A materialised CTE is evaluated once: an IN (subquery … LIMIT) may be re-run per row by
    # the planner and then claim more than ``limit`` rows.
    picked = (
        select(primary)
        .where(where)
        .order_by(order_by)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("picked")
        .prefix_with("MATERIALIZED")
    )
    stmt = (
        update(table)
        .where(primary.in_(select(picked.c[primary.name])), where)
        .values(values)
        .returning(*table.c)
    )
    return (await session.execute(stmt)).all()


async def update_many(
    session: AsyncSession,
    table: Table,
    rows: list[dict[str, Any]],
    *,
    columns: Sequence[str],
    where: Sequence[ColumnElement[bool]] = (),
    values: dict[str, Any] | None = None,
) -> None:
    """Set ``columns`` from each row (matched by primary key, where ``where`` holds) and the
    constant ``values`` on all of them, as one statement.

    PostgreSQL joins the table to the rows unnested from one array per column (one statement,
    planned once); SQLite runs an executemany.
    """
    if not rows:
        return
    key = next(iter(table.primary_key.columns))
    extra = values or {}
    if dialect_name(session) != "postgresql":
        stmt = (
            update(table)
            .where(key == bindparam("b_key"), *where)
            .values({**{c: bindparam(c) for c in columns}, **extra})
        )
        await session.execute(
            stmt, [{"b_key": r[key.name], **{c: r[c] for c in columns}} for r in rows]
        )
        return
    names = [key.name, *columns]
    given = select(*(_unnested(table.c[n], [r[n] for r in rows]).label(n) for n in names))
    given_rows = given.subquery("given")
    stmt = (
        update(table)
        .where(key == given_rows.c[key.name], *where)
        .values({**{c: given_rows.c[c] for c in columns}, **extra})
    )
    await session.execute(stmt)


def _unnested(column: Column[Any], values: list[Any]) -> ColumnElement[Any]:
    """``unnest($1::<type>[])``; JSON travels as text (a JSON list would read as a dimension)."""
    name = f"u_{column.name}"
    if isinstance(column.type, JSON):
        texts = [None if v is None else json.dumps(v) for v in values]
        return cast(func.unnest(bindparam(name, texts, type_=ARRAY(Text()))), column.type)
    return func.unnest(bindparam(name, values, type_=ARRAY(column.type)))


def dialect_name(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def encode_cursor(last_id: str) -> str:
    raw = json.dumps({"before": last_id}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    """The id to page before, or None for the first page. Raises InvalidInput on a bad cursor."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)["before"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(
            "cursor is not one this API gave out",
            errors=[{"path": "cursor", "message": "invalid cursor"}],
        ) from exc
    if not isinstance(value, str):
        raise InvalidInput(errors=[{"path": "cursor", "message": "invalid cursor"}])
    return value


def page(rows: Sequence[Any], limit: int, *, key: str = "id") -> tuple[list[Any], str | None]:
    """Rows fetched with limit + 1, newest first → (the page, the cursor for the next one)."""
    items = list(rows[:limit])
    next_cursor = encode_cursor(getattr(items[-1], key)) if len(rows) > limit else None
    return items, next_cursor
