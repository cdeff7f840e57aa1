"""Bulk writes: many rows in one statement, whatever their number.

PostgreSQL gets one statement over arrays, one per column (``unnest``), whatever the number of
rows: planned once, one round trip. SQLite gets an executemany.

Not a JSON array of rows (``jsonb_to_recordset``), as an append of events is: measured in the
processors, it saved asyncpg's check of every array value but cost PostgreSQL a fifth more CPU
per event, and PostgreSQL estimates it at 100 rows whatever it holds, so an UPDATE joined by it
scanned a table of a few thousand rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    Column,
    ColumnElement,
    Select,
    Table,
    Text,
    bindparam,
    cast,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert, Update

from smr import jsontext
from smr.repositories._sql import _ignoring_conflicts, _key, dialect_name, is_one_of


async def insert_new(
    session: AsyncSession, table: Table, rows: list[dict[str, Any]], *, returning: Sequence[str]
) -> list[tuple[Any, ...]]:
    """INSERT … ON CONFLICT DO NOTHING RETURNING ``returning``: the rows actually inserted (a
    row that conflicts with one stored, or with one a concurrent transaction is inserting, is
    not; PostgreSQL first waits for that transaction to end). One statement.

    Every row must carry the same keys.
    """
    if not rows:
        return []
    wanted = tuple(returning)
    if dialect_name(session) == "postgresql":
        columns, params = _columns_of(table, rows)
        stmt = _bulk_insert(table, columns, ignore_conflicts=True, returning=wanted)
        result = await session.execute(stmt, params)
    else:
        result = await session.execute(_sqlite_insert_new(table, wanted), rows)
    return [tuple(row) for row in result]


@cache
def _sqlite_insert_new(table: Table, returning: tuple[str, ...]) -> Insert:
    stmt = _ignoring_conflicts("sqlite", table)
    return stmt.returning(*(table.c[name] for name in returning))


async def insert_adding(
    session: AsyncSession, table: Table, rows: list[dict[str, Any]], *, add: str
) -> None:
    """INSERT … ON CONFLICT (the primary key) DO UPDATE SET ``add`` = ``add`` + the row's:
    counters. One statement, whose text on PostgreSQL does not depend on the number of rows
    (arrays, ``unnest``). The rows' keys must be unique and every row carry the same keys."""
    if not rows:
        return
    if dialect_name(session) == "postgresql":
        columns, params = _columns_of(table, rows)
        await session.execute(_adding(table, columns, add), params)
    else:
        await session.execute(_sqlite_adding(table, add), rows)


@cache
def _adding(table: Table, columns: tuple[str, ...], add: str) -> Insert:
    given = select(*(_unnested(table.c[name], "u", False).label(name) for name in columns))
    stmt = postgresql.insert(table).from_select(list(columns), given, include_defaults=False)
    keys = [c.name for c in table.primary_key.columns]
    return stmt.on_conflict_do_update(
        index_elements=keys, set_={add: table.c[add] + stmt.excluded[add]}
    )


@cache
def _sqlite_adding(table: Table, add: str) -> Insert:
    stmt = sqlite.insert(table)
    keys = [c.name for c in table.primary_key.columns]
    return stmt.on_conflict_do_update(
        index_elements=keys, set_={add: table.c[add] + stmt.excluded[add]}
    )


async def insert_many(session: AsyncSession, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows in bulk, as one statement. Every row must carry the same keys."""
    if not rows:
        return
    if dialect_name(session) == "postgresql":
        names, params = _columns_of(table, rows)
        stmt = _bulk_insert(table, names, ignore_conflicts=False, returning=())
        await session.execute(stmt, params)
    else:
        # RETURNING makes SQLAlchemy batch the rows into multi-row INSERTs ("insertmanyvalues").
        await session.execute(_insert_returning_key(table), rows)


@dataclass(frozen=True)
class Write:
    """One table's share of a ``write_together``: ``insert`` its rows, ``insert_ignoring``
    (ON CONFLICT DO NOTHING), or ``update`` its ``columns`` by primary key."""

    table: Table
    rows: list[dict[str, Any]]
    action: Literal["insert", "insert_ignoring", "update"] = "insert"
    columns: tuple[str, ...] = ()


async def write_together(session: AsyncSession, writes: Sequence[Write]) -> None:
    """Write to several tables at once.

    On PostgreSQL this is one statement, a WITH holding one INSERT or UPDATE per write: a round
    trip costs more than the writes, and foreign keys are checked when the statement ends, so
    the order of the writes does not matter. An UPDATE there does not see rows inserted by the
    same statement. Elsewhere the writes run in the order given.
    """
    writes = [w for w in writes if w.rows]
    if not writes:
        return
    if dialect_name(session) != "postgresql":
        await _write_in_turn(session, writes)
        return
    shapes: list[_Shape] = []
    params: dict[str, Any] = {}
    for index, write in enumerate(writes):
        # A single row's values go as they are: no arrays to encode, and a generic plan that
        # knows it is one row (an UPDATE joined to an array of unknown length may be planned as
        # a sequential scan).
        single = len(write.rows) == 1
        names, values = _params_of(write, f"w{index}", single=single)
        params.update(values)
        shapes.append((write.table, write.action, names, single))
    await session.execute(_written_together(tuple(shapes)), params)


def _params_of(
    write: Write, prefix: str, *, single: bool
) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The columns ``write`` sets (an update's key first) and its parameters."""
    if write.action != "update":
        return _columns_of(write.table, write.rows, prefix, single=single)
    names = (_key(write.table).name, *write.columns)
    given = [(write.table.c[n], _param(write.table.c[n], prefix)) for n in names]
    if single:
        return names, _one_row(given, write.rows[0])
    return names, _arrays(given, write.rows)


async def _write_in_turn(session: AsyncSession, writes: Sequence[Write]) -> None:
    for write in writes:
        table, rows = write.table, write.rows
        if write.action == "update":
            await update_many(session, table, rows, columns=write.columns)
        elif write.action == "insert":
            await insert_many(session, table, rows)
        else:
            await insert_new(session, table, rows, returning=[_key(table).name])


#: A write of ``write_together``: table, action, columns, and whether it is a single row.
_Shape = tuple[Table, str, tuple[str, ...], bool]


@cache
def _written_together(shapes: tuple[_Shape, ...]) -> Select[Any]:
    """The statement of ``write_together``: each write a data-modifying CTE (PostgreSQL runs
    every one once, whether the query reads it or not)."""
    writes = [
        _write(table, action, names, prefix=f"w{index}", single=single).cte(
            f"w{index}_{table.name}"
        )
        for index, (table, action, names, single) in enumerate(shapes)
    ]
    return select(literal_column("1")).add_cte(*writes)


def _write(
    table: Table, action: str, names: tuple[str, ...], *, prefix: str, single: bool
) -> Insert | Update:
    if action == "update":
        return _bulk_update(table, names[1:], prefix=prefix, single=single)
    return _bulk_insert(
        table,
        names,
        ignore_conflicts=action == "insert_ignoring",
        returning=(),
        prefix=prefix,
        single=single,
    )


@cache
def _insert_returning_key(table: Table) -> Insert:
    return insert(table).returning(_key(table))


def _bulk_insert(
    table: Table,
    columns: tuple[str, ...],
    *,
    ignore_conflicts: bool,
    returning: tuple[str, ...],
    prefix: str = "u",
    only_if: ColumnElement[bool] | None = None,
    single: bool = False,
) -> Insert:
    """INSERT INTO table (columns) SELECT unnest(…), … [WHERE only_if] [ON CONFLICT DO
    NOTHING]; ``single``: one row, SELECT $1, …"""
    given = select(*(_unnested(table.c[name], prefix, single).label(name) for name in columns))
    if only_if is not None:
        given = given.where(only_if)
    stmt = postgresql.insert(table).from_select(list(columns), given, include_defaults=False)
    if ignore_conflicts:
        stmt = stmt.on_conflict_do_nothing()
    return stmt.returning(*(table.c[name] for name in returning)) if returning else stmt


def _columns_of(
    table: Table, rows: list[dict[str, Any]], prefix: str = "u", *, single: bool = False
) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The columns to insert and the parameters of ``_bulk_insert`` (``single``: of one row)."""
    names, given, defaults = _insert_params(table, tuple(rows[0]), prefix)
    values = _one_row(given, rows[0]) if single else _arrays(given, rows)
    for default, param, value in defaults:
        bound = _bound(default, value)
        values[param] = bound if single else [bound] * len(rows)
    return names, values


def _one_row(given: _Given, row: dict[str, Any]) -> dict[str, Any]:
    """The parameters of the ``given`` columns of a one-row write, one per column."""
    return {param: _bound(column, row[column.name]) for column, param in given}


_Given = list[tuple[Column[Any], str]]


_Defaults = list[tuple[Column[Any], str, Any]]


@cache
def _insert_params(
    table: Table, given: tuple[str, ...], prefix: str
) -> tuple[tuple[str, ...], _Given, _Defaults]:
    """``_insert_columns`` with each column's parameter name: the names of the columns to
    insert, (column, parameter) for those given, (column, parameter, value) for defaults."""
    columns, defaults = _insert_columns(table, given)
    named = [(c, _param(c, prefix)) for c in columns[: len(given)]]
    filled = [(table.c[n], _param(table.c[n], prefix), v) for n, v in defaults.items()]
    return tuple(c.name for c in columns), named, filled


@cache
def _insert_columns(
    table: Table, given: tuple[str, ...]
) -> tuple[list[Column[Any]], dict[str, Any]]:
    """The columns to insert (those given, then those with a default the rows leave out), and
    those defaults (shared by every insert: the mutable ones are JSON, serialised on the way)."""
    defaults = {c.name: _default(c) for c in table.c if c.name not in given and c.default}
    return [table.c[name] for name in (*given, *defaults)], defaults


def _default(column: Column[Any]) -> Any:
    default: Any = column.default
    return default.arg(None) if default.is_callable else default.arg


async def update_many(
    session: AsyncSession,
    table: Table,
    rows: list[dict[str, Any]],
    *,
    columns: Sequence[str],
    only_if: tuple[str, Sequence[str]] | None = None,
    set_null: Sequence[str] = (),
) -> None:
    """Set ``columns`` from each row (matched by primary key) and NULL in the ``set_null``
    columns, as one statement; ``only_if=(column, values)`` leaves alone the rows whose
    ``column`` holds none of ``values``.

    PostgreSQL joins the table to the rows unnested from one array per column (see
    ``_bulk_update``).
    """
    if not rows:
        return
    key = _key(table).name
    guard = None if only_if is None else (only_if[0], tuple(only_if[1]))
    dialect = dialect_name(session)
    stmt = _update_statement(dialect, table, tuple(columns), guard, tuple(set_null))
    if dialect != "postgresql":
        await session.execute(stmt, [{"b_key": r[key], **{c: r[c] for c in columns}} for r in rows])
        return
    given = [(table.c[name], _param(table.c[name])) for name in (key, *columns)]
    await session.execute(stmt, _arrays(given, rows))


@cache
def _update_statement(
    dialect: str,
    table: Table,
    columns: tuple[str, ...],
    guard: tuple[str, tuple[str, ...]] | None,
    set_null: tuple[str, ...],
) -> Update:
    key = _key(table)
    where = [] if guard is None else [is_one_of(table.c[guard[0]], guard[1])]
    nulls: dict[str, Any] = dict.fromkeys(set_null)
    if dialect != "postgresql":
        return (
            update(table)
            .where(key == bindparam("b_key"), *where)
            .values({**{c: bindparam(c) for c in columns}, **nulls})
        )
    return _bulk_update(table, columns, where=where, nulls=nulls)


def _bulk_update(
    table: Table,
    columns: tuple[str, ...],
    *,
    where: Sequence[ColumnElement[bool]] = (),
    nulls: dict[str, Any] | None = None,
    prefix: str = "u",
    single: bool = False,
) -> Update:
    """UPDATE table SET columns FROM (SELECT unnest(…), …) given WHERE key = given.key (an
    ``unnest`` of array parameters is estimated at 10 rows: joined by the key's index);
    ``single``: one row, SELECT $1, …"""
    key = _key(table)
    names = [key.name, *columns]
    unnested = [_unnested(table.c[n], prefix, single).label(n) for n in names]
    given = select(*unnested).subquery(f"{prefix}_given")
    return (
        update(table)
        .where(key == given.c[key.name], *where)
        .values({**{c: given.c[c] for c in columns}, **(nulls or {})})
    )


def _unnested(column: Column[Any], prefix: str, single: bool) -> ColumnElement[Any]:
    """``unnest(:<prefix>_<table>_<column>)``, or the parameter itself when ``single``; JSON
    travels as text (a JSON list would read as a dimension)."""
    if single:
        return _single(column, prefix)
    name = _param(column, prefix)
    type_ = Text() if isinstance(column.type, JSON) else column.type
    values = func.unnest(bindparam(name, type_=ARRAY(type_, dimensions=1)))
    return cast(values, column.type) if isinstance(column.type, JSON) else values


def _arrays(given: _Given, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The parameters of ``_unnested`` columns: each column's values (JSON as text)."""
    return {param: _values(column, rows) for column, param in given}


def _values(column: Column[Any], rows: list[dict[str, Any]]) -> list[Any]:
    name = column.name
    if isinstance(column.type, JSON):  # asked once a column, not once a value
        return [jsontext.dumps(row[name]) for row in rows]
    return [row[name] for row in rows]


def _single(column: Column[Any], prefix: str) -> ColumnElement[Any]:
    """The parameter of ``column`` in a one-row write; JSON travels as text."""
    name = _param(column, prefix)
    if isinstance(column.type, JSON):
        return cast(bindparam(name, type_=Text()), column.type)
    return bindparam(name, type_=column.type)


def _param(column: Column[Any], prefix: str = "u") -> str:
    return f"{prefix}_{column.table.name}_{column.name}"


def _bound(column: Column[Any], value: Any) -> Any:
    """The value of a ``single`` parameter (JSON as text: ``jsontext.dumps``)."""
    return jsontext.dumps(value) if isinstance(column.type, JSON) else value
