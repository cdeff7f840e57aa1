"""Bulk writes: many rows in one statement, whatever their number.

PostgreSQL gets one statement, planned once, one round trip. Inserted rows travel as one JSON
array (``jsonb_to_recordset``), which asyncpg encodes as one text, where an array per column
cost it an isinstance check per value (about a sixth of a processor's CPU); each value is bound
as its column's type binds it (aware UTC times, enum values). Updates take an array per column
(see ``_bulk_update``). SQLite gets an executemany.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
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
    column,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert, Update
from sqlalchemy.types import TypeDecorator

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
        columns, params = _columns_of(table, rows, dialect=session.get_bind().dialect)
        stmt = _bulk_insert(table, columns, ignore_conflicts=True, returning=wanted)
        result = await session.execute(stmt, params)
    else:
        result = await session.execute(_sqlite_insert_new(table, wanted), rows)
    return [tuple(row) for row in result]


@cache
def _sqlite_insert_new(table: Table, returning: tuple[str, ...]) -> Insert:
    stmt = _ignoring_conflicts("sqlite", table)
    return stmt.returning(*(table.c[name] for name in returning))


async def insert_many(session: AsyncSession, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows in bulk, as one statement. Every row must carry the same keys."""
    if not rows:
        return
    if dialect_name(session) == "postgresql":
        names, params = _columns_of(table, rows, dialect=session.get_bind().dialect)
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
    dialect = session.get_bind().dialect
    if dialect.name != "postgresql":
        await _write_in_turn(session, writes)
        return
    shapes: list[_Shape] = []
    params: dict[str, Any] = {}
    for index, write in enumerate(writes):
        # A single row's values go as they are: no arrays to encode, and a generic plan that
        # knows it is one row (an UPDATE joined to an array of unknown length may be planned as
        # a sequential scan).
        single = len(write.rows) == 1
        names, values = _params_of(write, f"w{index}", dialect=dialect, single=single)
        params.update(values)
        shapes.append((write.table, write.action, names, single))
    await session.execute(_written_together(tuple(shapes)), params)


def _params_of(
    write: Write, prefix: str, *, dialect: Dialect, single: bool
) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The columns ``write`` sets (an update's key first) and its parameters."""
    if write.action != "update":
        return _columns_of(write.table, write.rows, prefix, dialect=dialect, single=single)
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
    """INSERT INTO table (columns) SELECT … FROM jsonb_to_recordset(…) [WHERE only_if] [ON
    CONFLICT DO NOTHING]; ``single``: one row, SELECT $1, …"""
    given = select(*_given(table, columns, prefix, single))
    if only_if is not None:
        given = given.where(only_if)
    stmt = postgresql.insert(table).from_select(list(columns), given, include_defaults=False)
    if ignore_conflicts:
        stmt = stmt.on_conflict_do_nothing()
    return stmt.returning(*(table.c[name] for name in returning)) if returning else stmt


def _columns_of(
    table: Table,
    rows: list[dict[str, Any]],
    prefix: str = "u",
    *,
    dialect: Dialect,
    single: bool = False,
) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The columns to insert and the parameters of ``_bulk_insert`` (``single``: of one row)."""
    names, given, defaults = _insert_params(table, tuple(rows[0]), prefix)
    if not single:
        filled = {default.name: value for default, _, value in defaults}
        return names, {_rows_param(table, prefix): _rows_json(table, rows, dialect, filled)}
    values = _one_row(given, rows[0])
    for default, param, value in defaults:
        values[param] = _bound(default, value)
    return names, values


def _one_row(given: _Given, row: dict[str, Any]) -> dict[str, Any]:
    """The parameters of the ``given`` columns of a one-row write, one per column."""
    return {param: _bound(column, row[column.name]) for column, param in given}


def _rows_json(
    table: Table,
    rows: list[dict[str, Any]],
    dialect: Dialect,
    filled: dict[str, Any] | None = None,
) -> str:
    """``rows`` (each with the ``filled`` values too) as the JSON text ``jsonb_to_recordset``
    reads, each value as its column's type binds it (aware UTC times, enum values); times in
    RFC 3339, decimals as their text (read back exactly), JSON columns as they are."""
    if filled:
        rows = [{**row, **filled} for row in rows]
    if bound := _decorated(table, tuple(rows[0])):
        rows = [dict(row) for row in rows] if not filled else rows
        for row in rows:
            for name, type_ in bound:
                row[name] = type_.process_bind_param(row[name], dialect)
    return jsontext.dumps(rows, default=_plain)


@cache
def _decorated(table: Table, names: tuple[str, ...]) -> list[tuple[str, TypeDecorator[Any]]]:
    """The columns among ``names`` whose type checks or converts what it binds."""
    found = [(name, table.c[name].type) for name in names]
    return [(name, type_) for name, type_ in found if isinstance(type_, TypeDecorator)]


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a value a bulk write takes")


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
    """UPDATE table SET columns FROM (SELECT unnest(…), …) given WHERE key = given.key;
    ``single``: one row, SELECT $1, …

    Not from a JSON array as inserts are: PostgreSQL estimates ``jsonb_to_recordset`` at 100
    rows whatever it holds, and joins that many to a table of a few thousand rows by a
    sequential scan; an ``unnest`` of array parameters, estimated at 10, joins by the key's
    index."""
    key = _key(table)
    names = [key.name, *columns]
    unnested = [_unnested(table.c[n], prefix, single).label(n) for n in names]
    given = select(*unnested).subquery(f"{prefix}_given")
    return (
        update(table)
        .where(key == given.c[key.name], *where)
        .values({**{c: given.c[c] for c in columns}, **(nulls or {})})
    )


def _given(
    table: Table, names: Sequence[str], prefix: str, single: bool
) -> list[ColumnElement[Any]]:
    """The values of the columns ``names`` of the rows given: the columns of their
    ``jsonb_to_recordset``, or one parameter each (``single``)."""
    if single:
        return [_single(table.c[name], prefix).label(name) for name in names]
    rows = (
        func.jsonb_to_recordset(cast(bindparam(_rows_param(table, prefix), type_=Text()), JSONB))
        .table_valued(*(column(name, _recordset_type(table.c[name])) for name in names))
        .render_derived(name=f"{prefix}_{table.name}_rows", with_types=True)
    )
    return [_read(table.c[name], rows.c[name]).label(name) for name in names]


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
    return {param: [_bound(column, row[column.name]) for row in rows] for column, param in given}


def _recordset_type(column: Column[Any]) -> Any:
    return JSONB() if isinstance(column.type, JSON) else column.type


def _read(column: Column[Any], value: ColumnElement[Any]) -> ColumnElement[Any]:
    """A JSON column's null stays the JSON value null, as SQLAlchemy writes None (the
    recordset reads it as SQL NULL)."""
    if isinstance(column.type, JSON):
        return func.coalesce(value, literal_column("'null'::jsonb", JSONB))
    return value


def _single(column: Column[Any], prefix: str) -> ColumnElement[Any]:
    """The parameter of ``column`` in a one-row write; JSON travels as text."""
    name = _param(column, prefix)
    if isinstance(column.type, JSON):
        return cast(bindparam(name, type_=Text()), column.type)
    return bindparam(name, type_=column.type)


def _param(column: Column[Any], prefix: str = "u") -> str:
    return f"{prefix}_{column.table.name}_{column.name}"


def _rows_param(table: Table, prefix: str = "u") -> str:
    return f"{prefix}_{table.name}_rows"


def _bound(column: Column[Any], value: Any) -> Any:
    """The value of a ``single`` parameter (JSON as text: ``jsontext.dumps``)."""
    return jsontext.dumps(value) if isinstance(column.type, JSON) else value
