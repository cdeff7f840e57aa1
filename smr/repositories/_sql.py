"""Dialect helpers shared by the repositories.

Statements that run on every event are built once per dialect (``functools.cache``) and take
their values as named parameters: building a statement costs more than executing it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ColumnElement,
    Select,
    Table,
    Text,
    any_,
    bindparam,
    cast,
    func,
    insert,
    literal_column,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.dml import Insert, Update

from smr import jsontext
from smr.edge import unstorable
from smr.errors import InvalidInput
from smr.repositories._execute import commits_alone, dialect_of, driver_of, fetch


def insert_ignoring_conflicts(session: AsyncSession, table: Table) -> Insert:
    """INSERT … ON CONFLICT DO NOTHING for the session's dialect."""
    return _ignoring_conflicts(dialect_name(session), table)


@cache
def _ignoring_conflicts(dialect: str, table: Table) -> Insert:
    module: Any = postgresql if dialect == "postgresql" else sqlite
    stmt: Insert = module.insert(table).on_conflict_do_nothing()
    return stmt


# Bulk writes. PostgreSQL gets one statement over arrays, one per column (``unnest``), whatever
# the number of rows: planned once, one round trip, run on the driver (see ``_execute``); a
# large plain insert is a binary COPY. SQLite gets an executemany.


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
    if dialect_name(session) != "postgresql":
        returned = await session.execute(_sqlite_insert_new(table, wanted), rows)
        return [tuple(row) for row in returned]
    columns, arrays = _columns_of(table, rows)
    stmt = _unnest_insert(table, columns, ignore_conflicts=True, returning=wanted)
    return [tuple(row[name] for name in wanted) for row in await fetch(session, stmt, arrays)]


@cache
def _sqlite_insert_new(table: Table, returning: tuple[str, ...]) -> Insert:
    stmt = _ignoring_conflicts("sqlite", table)
    return stmt.returning(*(table.c[name] for name in returning))


COPY_THRESHOLD = 8


async def insert_many(session: AsyncSession, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows in bulk, as one statement; on PostgreSQL a binary COPY from
    ``COPY_THRESHOLD`` rows on. Every row must carry the same keys."""
    if not rows:
        return
    driver = await driver_of(session)
    if driver is None:  # SQLite
        # RETURNING makes SQLAlchemy batch the rows into multi-row INSERTs ("insertmanyvalues").
        await session.execute(_insert_returning_key(table), rows)
    elif len(rows) >= COPY_THRESHOLD:
        await _copy(driver, dialect_of(session), table, rows)
    else:
        names, arrays = _columns_of(table, rows)
        stmt = _unnest_insert(table, names, ignore_conflicts=False, returning=())
        await fetch(session, stmt, arrays)


async def _copy(driver: Any, dialect: Dialect, table: Table, rows: list[dict[str, Any]]) -> None:
    columns, defaults = _insert_columns(table, tuple(rows[0]))
    full = [{**defaults, **row} for row in rows] if defaults else rows
    # The column types' own bind processors (JSON serialisation, UTC conversion) keep COPY
    # equivalent to an INSERT through SQLAlchemy.
    processors = [(c.name, c.type._cached_bind_processor(dialect)) for c in columns]
    records = [tuple([p(row[n]) if p else row[n] for n, p in processors]) for row in full]
    await driver.copy_records_to_table(
        table.name, records=records, columns=[c.name for c in columns]
    )


async def insert_together(session: AsyncSession, writes: Sequence[Write]) -> None:
    """Plain inserts into several tables, in the order given (rows may refer to rows of an
    earlier write). Consecutive writes under ``COPY_THRESHOLD`` rows go together
    (``write_together``: one statement on PostgreSQL); larger ones are copied, as by
    ``insert_many``."""
    group: list[Write] = []
    for write in writes:
        if len(write.rows) < COPY_THRESHOLD:
            group.append(write)
            continue
        await write_together(session, group)  # the writes before this one go first
        group = []
        await insert_many(session, write.table, write.rows)
    await write_together(session, group)


@dataclass(frozen=True)
class Write:
    """One table's share of a ``write_together``.

    ``action``: ``insert``; ``insert_new``, an insert every row of which must land (ON CONFLICT
    DO NOTHING, counted); ``insert_ignoring`` (ON CONFLICT DO NOTHING, not counted); ``update``
    of ``columns`` by primary key; ``update_unchanged``, an update every row of which must
    land, and does only if the row's version (``row_version``, given in each row under
    ``VERSION``) is still the one read. SQLite, whose writers take turns from the start of
    their transactions, updates those rows like any others.
    """

    table: Table
    rows: list[dict[str, Any]]
    action: Literal["insert", "insert_new", "insert_ignoring", "update", "update_unchanged"] = (
        "insert"
    )
    columns: tuple[str, ...] = ()


async def write_together(session: AsyncSession, writes: Sequence[Write]) -> bool:
    """Write to several tables at once, all or nothing: False when a row that had to land did
    not (a row of an ``insert_new`` conflicts with one stored, or being stored by a concurrent
    transaction: PostgreSQL waits for it to end; a row of an ``update_unchanged`` was changed
    since it was read); the caller then rolls back.

    On PostgreSQL this is one statement, a WITH holding one INSERT or UPDATE per write, every
    one but those that must land conditional on all of those landing: a round trip costs more
    than the writes, and foreign keys are checked when the statement ends, so the order of the
    writes does not matter. An UPDATE there does not see rows inserted by the same statement.
    Where statements commit alone (``statements_commit_alone``), one that falls short raises
    instead (``smr_all_landed``), which undoes it all, and nothing is written. Elsewhere the
    writes run in the order given, up to the first ``insert_new`` that falls short.
    """
    writes = [w for w in writes if w.rows]
    if not writes:
        return True
    if await driver_of(session) is None:  # SQLite
        return await _write_in_turn(session, writes)
    shapes: list[_Shape] = []
    params: dict[str, Any] = {"expected": 0}
    for index, write in enumerate(writes):
        prefix = f"w{index}"
        # A single row's values go as they are: no arrays to encode, and a generic plan that
        # knows it is one row (an UPDATE joined to an array of unknown length may be planned as
        # a sequential scan).
        single = len(write.rows) == 1
        if write.action in _UPDATES:
            names = (_key(write.table).name, *write.columns)
            given = [(write.table.c[n], _param(write.table.c[n], prefix)) for n in names]
            params.update(_values(given, write.rows, single=single))
            if write.action == "update_unchanged":
                versions = [row[VERSION] for row in write.rows]
                params[_version_param(write.table, prefix)] = versions[0] if single else versions
        else:
            names, values = _columns_of(write.table, write.rows, prefix, single=single)
            params.update(values)
        if write.action in _MUST_LAND:
            params["expected"] += len(write.rows)
        shapes.append((write.table, write.action, names, single))
    if not commits_alone(session):
        rows = await fetch(session, _written_together(tuple(shapes), alone=False), params)
        return bool(rows[0]["landed"] == params["expected"])
    try:
        await fetch(session, _written_together(tuple(shapes), alone=True), params)
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == _SHORT:
            return False
        raise
    return True


async def _write_in_turn(session: AsyncSession, writes: Sequence[Write]) -> bool:
    for write in writes:
        table, rows = write.table, write.rows
        if write.action in _UPDATES:
            await update_many(session, table, rows, columns=write.columns)
        elif write.action == "insert":
            await insert_many(session, table, rows)
        else:
            key = _key(table).name
            landed = await insert_new(session, table, rows, returning=[key])
            if write.action == "insert_new" and len(landed) != len(rows):
                return False
    return True


#: A write of ``write_together``: table, action, columns, and whether it is a single row.
_Shape = tuple[Table, str, tuple[str, ...], bool]


@cache
def _written_together(shapes: tuple[_Shape, ...], *, alone: bool) -> Select[Any]:
    """The statement of ``write_together``; ``alone``: it commits as it ends, so it raises when
    a row falls short, rather than leave the caller to roll back what did land."""
    probes = []
    for index, (table, action, names, single) in enumerate(shapes):
        prefix = f"w{index}"
        if action == "insert_new":
            stmt: Insert | Update = _unnest_insert(
                table,
                names,
                ignore_conflicts=True,
                returning=(_key(table).name,),
                prefix=prefix,
                single=single,
            )
        elif action == "update_unchanged":
            stmt = _unnest_update(
                table, names[1:], prefix=prefix, single=single, unchanged=True
            ).returning(_key(table))
        else:
            continue
        probes.append(stmt.cte(f"{prefix}_{table.name}"))
    counts = [select(func.count()).select_from(p).scalar_subquery() for p in probes]
    landed: ColumnElement[Any] = sum(counts[1:], counts[0]) if counts else literal_column("0")
    gate = landed == bindparam("expected")
    rest = []
    for index, (table, action, names, single) in enumerate(shapes):
        prefix = f"w{index}"
        if action in _MUST_LAND:
            continue
        if action == "update":
            stmt = _unnest_update(table, names[1:], where=[gate], prefix=prefix, single=single)
        else:
            stmt = _unnest_insert(
                table,
                names,
                ignore_conflicts=action == "insert_ignoring",
                returning=(),
                prefix=prefix,
                only_if=gate,
                single=single,
            )
        rest.append(stmt.cte(f"{prefix}_{table.name}"))
    if alone:
        landed = func.smr_all_landed(landed, bindparam("expected"), type_=BigInteger())
    return select(landed.label("landed")).add_cte(*probes, *rest)


#: The writes whose every row must land, and the SQLSTATE ``smr_all_landed`` raises when one
#: did not (see migration 0007).
_MUST_LAND = frozenset({"insert_new", "update_unchanged"})
_UPDATES = frozenset({"update", "update_unchanged"})
_SHORT = "SMR01"
#: The key of a row's version in the rows of an ``update_unchanged`` (see ``row_version``).
VERSION = "version"


def row_version(table: Table) -> ColumnElement[str]:
    """The stored version of a row of ``table`` on PostgreSQL: its ``xmin``, the transaction
    that wrote it, which every UPDATE changes (a row lock does not), as text."""
    return cast(literal_column(f"{table.name}.xmin"), Text())


def _version_param(table: Table, prefix: str) -> str:
    return f"{prefix}_{table.name}_{VERSION}"


def _key(table: Table) -> Column[Any]:
    return next(iter(table.primary_key.columns))


@cache
def _insert_returning_key(table: Table) -> Insert:
    return insert(table).returning(_key(table))


@cache
def _unnest_insert(
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
    """The columns to insert and the parameters of ``_unnest_insert`` (``single``: of one row)."""
    names, given, defaults = _insert_params(table, tuple(rows[0]), prefix)
    values = _values(given, rows, single=single)
    for column, param, value in defaults:
        values[param] = _bound(column, value) if single else _array(column, [value] * len(rows))
    return names, values


def _values(given: _Given, rows: list[dict[str, Any]], *, single: bool) -> dict[str, Any]:
    """Parameter → the column's values in ``rows`` (``_array``), or its one value if ``single``."""
    if not single:
        return {
            param: _array(column, [row[column.name] for row in rows]) for column, param in given
        }
    row = rows[0]
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


def is_one_of(column: ColumnElement[Any], constants: Sequence[Any]) -> ColumnElement[bool]:
    """``column`` equal to one of ``constants``, written as equalities rather than an IN: a
    statement built once runs on the driver or as SQLite's executemany, and neither expands an
    IN of constants."""
    return or_(*(column == constant for constant in constants))


def any_of(
    dialect: str, column: ColumnElement[Any] | InstrumentedAttribute[Any], name: str
) -> ColumnElement[bool]:
    """``one_of`` for a statement built once: the values come later, as the list parameter
    ``name``."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(column.type, dimensions=1)))
    return column.in_(bindparam(name, expanding=True))


def each_key(
    dialect: str,
    table: Table,
    keys: Sequence[tuple[str, str]],
    columns: Sequence[str],
    *,
    single: bool = False,
) -> Select[Any]:
    """``columns`` of the rows of ``table`` matching one of several keys, or the one key when
    ``single``: ``keys`` names (column, parameter) pairs, and ``key_params`` gives the
    parameters.

    A key looked up with ``= ANY($1)`` is planned, in a generic plan, for an array of unknown
    length: on a table of a few thousand rows, a sequential scan. So PostgreSQL looks each key
    up on its own, in a LATERAL subquery the planner cannot flatten: an index lookup per key
    in any plan. One key is a plain equality, which a generic plan (no planning per run) gets
    right. SQLite gets an IN per column (then a row matching one column's key and another's may
    come too: callers pick what they asked for).
    """
    picked = [table.c[name] for name in columns]
    if single:
        return select(*picked).where(*(table.c[c] == bindparam(p) for c, p in keys))
    if dialect != "postgresql":
        return select(*picked).where(*(any_of(dialect, table.c[c], p) for c, p in keys))
    arrays = (bindparam(p, type_=ARRAY(table.c[c].type, dimensions=1)) for c, p in keys)
    names = [column for column, _ in keys]
    asked = func.unnest(*arrays).table_valued(*names).render_derived(name="asked")
    each = (
        select(*picked)
        .where(*(table.c[name] == asked.c[name] for name in names))
        .offset(literal_column("0"))  # keeps the subquery from being flattened
        .lateral(f"{table.name}_found")
    )
    return select(*each.c).select_from(asked).join(each, true())


def key_params(keys: Sequence[tuple[Any, ...]], params: Sequence[str]) -> dict[str, Any]:
    """The parameters of an ``each_key`` statement (``single`` when there is one key) for
    ``keys``, each a tuple of values in the order of ``params``; none for no keys."""
    if not keys:
        return {}
    if len(keys) == 1:
        return dict(zip(params, keys[0], strict=True))
    return {param: [key[i] for key in keys] for i, param in enumerate(params)}


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

    PostgreSQL joins the table to the rows unnested from one array per column.
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
    arrays = {_param(table.c[n]): _array(table.c[n], [r[n] for r in rows]) for n in (key, *columns)}
    await fetch(session, stmt, arrays)


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
    return _unnest_update(table, columns, where=where, nulls=nulls)


def _unnest_update(
    table: Table,
    columns: tuple[str, ...],
    *,
    where: Sequence[ColumnElement[bool]] = (),
    nulls: dict[str, Any] | None = None,
    prefix: str = "u",
    single: bool = False,
    unchanged: bool = False,
) -> Update:
    """UPDATE table SET columns FROM (SELECT unnest(…), …) given WHERE key = given.key;
    ``single``: one row, SELECT $1, …; ``unchanged``: only rows whose ``row_version`` is still
    the one given with them."""
    key = _key(table)
    names = [key.name, *columns]
    unnested = [_unnested(table.c[n], prefix, single).label(n) for n in names]
    if unchanged:
        version = _supplied(_version_param(table, prefix), Text(), single)
        unnested.append(version.label(VERSION))
    given = select(*unnested).subquery(f"{prefix}_given")
    if unchanged:
        where = [*where, row_version(table) == given.c[VERSION]]
    return (
        update(table)
        .where(key == given.c[key.name], *where)
        .values({**{c: given.c[c] for c in columns}, **(nulls or {})})
    )


def _unnested(column: Column[Any], prefix: str = "u", single: bool = False) -> ColumnElement[Any]:
    """``unnest(:<prefix>_<table>_<column>)``, or the parameter itself when ``single``; JSON
    travels as text (a JSON list would read as a dimension)."""
    if isinstance(column.type, JSON):
        return cast(_supplied(_param(column, prefix), Text(), single), column.type)
    return _supplied(_param(column, prefix), column.type, single)


def _supplied(name: str, type_: Any, single: bool) -> ColumnElement[Any]:
    """Parameter ``name`` of ``type_``: ``unnest`` of an array of them, or itself if ``single``."""
    if single:
        return bindparam(name, type_=type_)
    # One dimension: the driver then takes each list as it is (see ``_execute._processor``).
    return func.unnest(bindparam(name, type_=ARRAY(type_, dimensions=1)))


def _param(column: Column[Any], prefix: str = "u") -> str:
    return f"{prefix}_{column.table.name}_{column.name}"


def _array(column: Column[Any], values: list[Any]) -> list[Any]:
    """The values of an ``_unnested`` parameter (JSON as text: ``jsontext.dumps``)."""
    if isinstance(column.type, JSON):
        return [jsontext.dumps(v) for v in values]
    return values


def _bound(column: Column[Any], value: Any) -> Any:
    """The value of a ``single`` ``_unnested`` parameter: ``_array`` of one value."""
    return jsontext.dumps(value) if isinstance(column.type, JSON) else value


def dialect_name(session: AsyncSession) -> str:
    return dialect_of(session).name


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
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise InvalidInput(
            "cursor is not one this API gave out",
            errors=[{"path": "cursor", "message": "invalid cursor"}],
        ) from exc
    if not isinstance(value, str) or len(value) > 64 or unstorable(value):
        raise InvalidInput(errors=[{"path": "cursor", "message": "invalid cursor"}])
    return value


def page(rows: Sequence[Any], limit: int, *, key: str = "id") -> tuple[list[Any], str | None]:
    """Rows fetched with limit + 1, newest first → (the page, the cursor for the next one)."""
    items = list(rows[:limit])
    next_cursor = encode_cursor(getattr(items[-1], key)) if len(rows) > limit else None
    return items, next_cursor
