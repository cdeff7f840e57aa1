"""The bench database: DSNs, create and drop, the ``--pg`` option, row counts."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from collections.abc import Iterator

import asyncpg  # type: ignore[import-untyped]

from bench.harness.common import BenchError, log

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"

BARE_TABLE = """
CREATE TABLE bare_events (
    id bigserial PRIMARY KEY,
    key text NOT NULL UNIQUE,
    body jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
)
"""


def add_database_options(parser: argparse.ArgumentParser, *, database: str) -> None:
    """``--pg`` (the maintenance DSN), ``--database`` (recreated) and ``--keep-db``."""
    parser.add_argument(
        "--pg",
        default=os.environ.get("SMR_BENCH_PG", DEFAULT_PG),
        help="maintenance DSN used to create and drop the bench database (env SMR_BENCH_PG)",
    )
    parser.add_argument("--database", default=database, help="bench database, recreated")
    parser.add_argument("--keep-db", action="store_true", help="keep the database afterwards")


def check_database_name(parser: argparse.ArgumentParser, name: str) -> None:
    if not name.replace("_", "").isalnum():
        parser.error("--database must be letters, digits and underscores")


def database_dsn(pg: str, database: str) -> str:
    """``pg`` with its database replaced by ``database``."""
    base, sep, query = pg.partition("?")
    head, slash, _ = base.rpartition("/")
    if not slash or "//" not in head + slash:
        raise BenchError(f"cannot read a database name out of --pg {pg!r}")
    return f"{head}/{database}{sep}{query}"


def database_of(dsn: str) -> str:
    """The database name of ``dsn``."""
    return dsn.partition("?")[0].rpartition("/")[2]


def sqlalchemy_url(dsn: str) -> str:
    _, _, rest = dsn.partition("://")
    return f"postgresql+asyncpg://{rest}"


async def create_database(pg: str, database: str) -> str:
    """Drop and create ``database``; the server's version."""
    conn = await asyncpg.connect(pg)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{database}"')
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


async def recreate_database(pg: str, database: str) -> str:
    """Drop and create ``database``, make the bare endpoint's table; the server's version."""
    version = await create_database(pg, database)
    conn = await asyncpg.connect(database_dsn(pg, database))
    try:
        await conn.execute(BARE_TABLE)
    finally:
        await conn.close()
    return version


async def drop_database(pg: str, database: str) -> None:
    conn = await asyncpg.connect(pg)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await conn.close()


@contextlib.contextmanager
def dropped_afterwards(pg: str, database: str, *, keep: bool) -> Iterator[None]:
    """Drops ``database`` on the way out (errors and Ctrl-C included) unless ``keep``."""
    try:
        yield
    finally:
        if not keep:
            try:
                asyncio.run(drop_database(pg, database))
            except (OSError, asyncpg.PostgresError) as exc:
                log(f"warning: could not drop database {database}: {exc}")


async def count_rows(conn: asyncpg.Connection, table: str) -> int | str:
    """``count(*)`` of ``table``, or why it could not be read."""
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))  # noqa: S608
    except asyncpg.PostgresError as exc:
        return f"unavailable: {exc}"


async def server_settings(dsn: str) -> dict[str, str]:
    """Server settings that shape the figures (memory, vacuum, durability)."""
    names = ("shared_buffers", "work_mem", "autovacuum", "synchronous_commit", "jit")
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT name, current_setting(name) AS value FROM pg_settings WHERE name = ANY($1)",
            list(names),
        )
    finally:
        await conn.close()
    return {str(r["name"]): str(r["value"]) for r in rows}


AUTOVACUUM_OFF = (
    "autovacuum is off on this server: the tables are neither vacuumed nor analysed while the "
    "run goes on, so what each statement reads grows with the run (a production server runs it)"
)
