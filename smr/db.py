"""Async engine and session factory. SQLite runs in WAL mode; PostgreSQL through asyncpg."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import event
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

#: How long opening a PostgreSQL connection may take before the database counts as unreachable.
CONNECT_TIMEOUT_SECONDS = 10


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def one_writer_at_a_time(url: str) -> bool:
    """Whether the database at ``url`` runs one write transaction at a time (SQLite takes the
    write lock at BEGIN): work that could write concurrently should take turns instead."""
    return is_sqlite(url)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Take the write lock at BEGIN: a deferred transaction that later upgrades to a writer can
    # fail with SQLITE_BUSY without waiting for busy_timeout.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _begin_immediate(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(url: str) -> AsyncEngine:
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _begin_immediate)
        return engine
    # Lookups take arrays (`= ANY($1)`) on the leading column of an index, so the generic plans
    # PostgreSQL caches after a few executions stay index lookups.
    server_settings = {"application_name": "smr"}
    engine = create_async_engine(
        url,
        # Up to 20 connections, kept: connections beyond ``pool_size`` ("overflow") are closed
        # when returned to a full pool, and a busy API would open one per request, each a new
        # server process that plans every statement again.
        pool_size=20,
        max_overflow=0,
        # No ping per checkout (a round trip per transaction): a connection the server closed
        # is replaced at checkout (``_discard_closed``); recycling bounds the age of idle ones.
        pool_recycle=1800,
        # asyncpg waits 60 s for a connection by default; a database that does not answer is
        # reported sooner (503 with Retry-After, /readyz not ready, a worker backing off).
        connect_args={"server_settings": server_settings, "timeout": CONNECT_TIMEOUT_SECONDS},
    )
    event.listen(engine.sync_engine, "checkout", _discard_closed)
    return engine


def _discard_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Replace, at checkout, a pooled connection the server closed (PostgreSQL restarted):
    asyncpg notices a closed socket as it happens, so this costs no round trip, unlike a
    ping per checkout. The first statement on the dead connection would otherwise fail."""
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def unit_of_work(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One transaction: commits when the block ends normally, rolls back on any exception;
    the session is closed either way, even if the caller is cancelled meanwhile.

    The transaction begins with the session's first statement, and commit and close are one
    step: every step of an async session is a greenlet switch, which costs more than many
    of the statements a unit of work runs.
    """
    session = sessions()
    try:
        yield session
    except BaseException:
        await asyncio.shield(session.close())  # which rolls back
        raise
    await asyncio.shield(session.run_sync(_commit_and_close))


def _commit_and_close(session: Session) -> None:
    try:
        session.commit()
    finally:
        session.close()


#: SQLSTATEs after which the whole transaction may simply be run again.
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock


def is_transient(exc: BaseException) -> bool:
    """A database error that a retry of the same transaction can succeed after."""
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return sqlstate in _RETRYABLE_SQLSTATES or "database is locked" in str(orig)


#: SQLSTATEs of a server that is gone, restarting or full: connection exceptions (class 08),
#: admin or crash shutdown and "cannot connect now" (57P01–57P03), too many connections.
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})
#: A host or network that cannot be reached (other ``OSError``s, such as a missing file, are not
#: the database's).
_UNREACHABLE_ERRNOS = frozenset({errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN})


def is_unavailable(exc: BaseException) -> bool:
    """The database cannot be reached (refused, dropped, restarting, no free connection):
    a fault of the moment, not of the request, that goes away when the database is back.

    Looks through the chain of causes: SQLAlchemy wraps the driver's error, and a connection
    that cannot be opened raises the socket's error (refused, reset, timed out, no such host,
    no route) as is.
    """
    seen: BaseException | None = exc
    for _ in range(16):  # a chain is short; this bounds a cycle
        if seen is None:
            return False
        if isinstance(seen, DBAPIError) and seen.connection_invalidated:
            return True
        if isinstance(seen, PoolTimeout | ConnectionError | TimeoutError | socket.gaierror):
            return True
        if isinstance(seen, OSError) and seen.errno in _UNREACHABLE_ERRNOS:
            return True
        if isinstance(seen, asyncpg.InterfaceError) and "connection is closed" in str(seen):
            return True  # asyncpg's word for a connection it saw closed (SQLAlchemy's test too)
        sqlstate = str(getattr(seen, "sqlstate", None) or getattr(seen, "pgcode", None) or "")
        if sqlstate.startswith("08") or sqlstate in _UNAVAILABLE_SQLSTATES:
            return True
        driver = seen.orig if isinstance(seen, DBAPIError) else None
        seen = driver or seen.__cause__  # not __context__: an error raised while handling one
    return False


#: What a database call can raise: SQLAlchemy's errors; the driver's own (asyncpg's, and those of
#: SQLAlchemy's adapter for it), should one escape unwrapped; and the socket's, when a connection
#: cannot be opened.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    SQLAlchemyError,
    AsyncAdapt_asyncpg_dbapi.Error,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,
)


def describe(exc: BaseException) -> str:
    """One line for a log: the error's type and the first line of its message."""
    return f"{type(exc).__name__}: {str(exc).partition(chr(10))[0]}"


def log_failure(log: logging.Logger, what: str, exc: BaseException) -> bool:
    """Log ``exc``, which ``what`` raised: one warning line when the database cannot be reached
    (it is the moment's fault; the work is tried again), a traceback otherwise. Returns whether
    the database was unavailable."""
    if is_unavailable(exc):
        log.warning("%s: database unavailable (%s)", what, describe(exc))
        return True
    log.error("%s failed", what, exc_info=exc)
    return False
