"""Dialect helpers shared by the repositories.

Statements that run on every event are built once per dialect (``functools.cache``) and take
their values as named parameters (``session.execute(stmt, params)``): building a statement
costs more than executing it, and SQLAlchemy's compiled cache then finds it at once.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Select,
    Table,
    any_,
    bindparam,
    func,
    literal_column,
    or_,
    select,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.dml import Insert

from smr.edge import unstorable
from smr.errors import InvalidInput


def insert_ignoring_conflicts(session: AsyncSession, table: Table) -> Insert:
    """INSERT … ON CONFLICT DO NOTHING for the session's dialect."""
    return _ignoring_conflicts(dialect_name(session), table)


@cache
def _ignoring_conflicts(dialect: str, table: Table) -> Insert:
    module: Any = postgresql if dialect == "postgresql" else sqlite
    stmt: Insert = module.insert(table).on_conflict_do_nothing()
    return stmt


def _key(table: Table) -> Column[Any]:
    return next(iter(table.primary_key.columns))


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
    """``column`` equal to one of ``constants``, written as equalities rather than an IN:
    SQLAlchemy expands an IN of constants at every execution, and not at all in an
    executemany, while equalities stay part of the statement built once."""
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


def dialect_name(session: AsyncSession) -> str:
    """The name of the dialect of the engine ``session`` runs on ("postgresql", "sqlite")."""
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
