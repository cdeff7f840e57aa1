"""Running the statements the repositories build once (see ``_sql``), with named parameters.

On PostgreSQL a statement is compiled once per engine and run straight on the asyncpg
connection that holds the session's transaction. For the small statements ingest runs for
every event, SQLAlchemy's execution layer (execution context, result objects, a greenlet
switch) costs two to three times the round trip itself. Nothing else changes:

* the transaction is SQLAlchemy's: SQLAlchemy's asyncpg adapter begins it (``_begin``) just
  before the first statement, as it would when running that statement, and commit and
  rollback stay the session's;
* the values go through the column types' own bind processors, as SQLAlchemy would send them;
* the types read this way (strings, numbers, aware timestamps, and JSON, which asyncpg decodes
  with the codec SQLAlchemy installs on each connection) come back as SQLAlchemy returns them;
* a database error is raised as SQLAlchemy's ``DBAPIError`` (``IntegrityError`` for a violated
  constraint), so ``db.is_transient`` and the callers' handlers see what they always saw.

Like a Core connection, and unlike ``session.execute``, this does not autoflush: the
repositories write through statements, never through pending ORM objects.

On SQLite the session runs the statement.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import CursorResult, Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler


async def fetch(
    session: AsyncSession, stmt: Executable, params: Mapping[str, Any]
) -> list[Mapping[str, Any]]:
    """Run ``stmt`` with ``params``; the rows it returns (none without RETURNING), each a
    read-only mapping by column name (asyncpg's own records on PostgreSQL)."""
    driver = await driver_of(session)
    if driver is None:
        return await _through_sqlalchemy(session, stmt, params)
    query = _compile(stmt, dialect_of(session))
    try:
        records = await driver.fetch(query.sql, *query.arguments(params))
    except asyncpg.PostgresError as exc:
        error = (
            IntegrityError
            if isinstance(exc, asyncpg.IntegrityConstraintViolationError)
            else DBAPIError
        )
        raise error(query.sql, None, exc) from exc
    rows: list[Mapping[str, Any]] = records
    return rows


def dialect_of(session: AsyncSession) -> Dialect:
    """The dialect of the engine ``session`` is bound to (asking the session which bind it
    would use, ``get_bind``, walks several layers each time)."""
    bind = session.bind
    return (bind if bind is not None else session.get_bind()).dialect


async def driver_of(session: AsyncSession) -> Any | None:
    """The asyncpg connection of the session's transaction, begun if it was not yet; None on
    SQLite.

    Found once per transaction (in ``session.info``), with one greenlet switch.
    """
    if dialect_of(session).name != "postgresql":
        return None
    transaction = session.sync_session.get_transaction()
    known = session.info.get(_DRIVER)
    if known is not None and known[0] is transaction:
        return known[1]
    raw = await session.run_sync(_pooled_connection)
    driver: Any = raw.driver_connection
    alone = commits_alone(session)
    if not driver.is_in_transaction() and not alone and not await _begin(raw.dbapi_connection):
        return None
    session.info[_DRIVER] = (session.sync_session.get_transaction(), driver)
    return driver


def _pooled_connection(session: Session) -> PoolProxiedConnection:
    return session.connection().connection


async def _begin(adapted: Any) -> bool:
    """Send BEGIN through SQLAlchemy's asyncpg adapter, as its next statement would have.

    SQLAlchemy begins a transaction lazily, when it runs the transaction's first statement;
    running that statement through SQLAlchemy costs several times its round trip. Beginning
    here lets the first statement, like the others, go straight to the driver, while commit
    and rollback stay the session's. False where the adapter does not begin this way (then
    SQLAlchemy runs the first statement).
    """
    start = getattr(adapted, "_start_transaction", None)
    if start is None or getattr(adapted, "_transaction", True) is not None:
        return False
    await start()
    return True


_DRIVER = "smr.driver"  # session.info key: (the transaction, its asyncpg connection)
_ALONE = "smr.alone"  # session.info key: True when statements commit on their own


def statements_commit_alone(session: AsyncSession) -> bool:
    """Let each statement ``session`` runs from now on commit on its own, as it ends: no BEGIN
    and no COMMIT, two round trips fewer. For a unit of work whose reads need no lock and
    whose writes are one statement. True on PostgreSQL before the session has run anything;
    False, and nothing changes, otherwise.

    A statement run through SQLAlchemy (``session.execute``) still begins a transaction, as
    always: the statements after it run in that transaction, which commits with the session.
    """
    if dialect_of(session).name != "postgresql" or _DRIVER in session.info:
        return False
    session.info[_ALONE] = True
    return True


def commits_alone(session: AsyncSession) -> bool:
    """Whether ``statements_commit_alone`` was granted for ``session``."""
    return bool(session.info.get(_ALONE, False))


async def _through_sqlalchemy(
    session: AsyncSession, stmt: Executable, params: Mapping[str, Any]
) -> list[Mapping[str, Any]]:
    result = await session.execute(stmt, params)
    if isinstance(result, CursorResult) and not result.returns_rows:
        return []
    return [dict(row._mapping) for row in result]


@dataclass(frozen=True)
class _Query:
    compiled: SQLCompiler
    sql: str
    binds: tuple[tuple[str, Callable[[Any], Any] | None], ...]  # in $n order, with processor
    #: The values bound when the statement was built, by parameter name; None when the names
    #: are not plain (then SQLAlchemy works the values out).
    preset: dict[str, Any] | None
    #: The parameters the caller must give (those without a value of their own).
    required: frozenset[str]

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        preset = self.preset
        if preset is None or not params.keys() >= self.required:
            values = self.compiled.construct_params(params)  # or its error for a missing one
        else:
            values = {**preset, **params}
        return [process(values[name]) if process else values[name] for name, process in self.binds]


@lru_cache(maxsize=256)
def _compile(stmt: Executable, dialect: Dialect) -> _Query:
    compiled: Any = stmt.compile(dialect=dialect)  # type: ignore[attr-defined]
    if compiled.post_compile_params:
        raise ValueError("an expanding IN cannot run on the driver: use _sql.any_of")
    names = compiled.positiontup or []
    binds = tuple((n, _processor(compiled.binds[n].type, dialect)) for n in names)
    preset = _preset(compiled)
    required = frozenset(names) - (preset or {}).keys()
    return _Query(compiled, compiled.string, binds, preset, required)


def _preset(compiled: Any) -> dict[str, Any] | None:
    """What ``construct_params`` takes from the statement itself: the values of the parameters
    bound when it was built. None where it does more than that (escaped names, values worked
    out by a callable), and where a parameter goes by a name other than its key."""
    if compiled.escaped_bind_names:
        return None
    preset = {}
    for bind, name in compiled.bind_names.items():
        if bind.callable is not None or (bind.key != name and bind.required):
            return None
        if not bind.required:
            preset[name] = bind.value
    return preset


def _processor(type_: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    """The bind processor of ``type_``; for a one-dimensional array, the item type's applied
    to each item, or none at all (the list goes to the driver as it is), without SQLAlchemy's
    per-array checks for nested lists: bulk writes bind an array per column."""
    if not (isinstance(type_, ARRAY) and type_.dimensions == 1):
        processor: Callable[[Any], Any] | None = type_._cached_bind_processor(dialect)
        return processor
    item: Callable[[Any], Any] | None = type_.item_type._cached_bind_processor(dialect)
    if item is None:
        return None
    return lambda values: None if values is None else [item(v) for v in values]
