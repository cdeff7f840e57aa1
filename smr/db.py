"""Async engine and session factory. SQLite runs in WAL mode; PostgreSQL through asyncpg."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


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
    return create_async_engine(
        url,
        # Up to 20 connections, kept: connections beyond ``pool_size`` ("overflow") are closed
        # when returned to a full pool, and a busy API would open one per request, each a new
        # server process that plans every statement again.
        pool_size=20,
        max_overflow=0,
        # No ping per checkout (a round trip per transaction): a dead connection is detected on
        # use and the pool is invalidated; recycling bounds the age of idle connections.
        pool_recycle=1800,
        connect_args={"server_settings": server_settings},
    )


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
