"""The schema comes only from the migrations, and they agree with the models on every database."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from smr.db import create_engine
from smr.migrations import alembic_config
from smr.models import Base


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_models_and_migrations_agree(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(_diff)
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    finally:
        await engine.dispose()

    assert diff == []
    assert set(Base.metadata.tables) <= tables


async def test_downgrade_then_upgrade_round_trips(database_url: str) -> None:
    from alembic import command

    config = alembic_config(database_url)
    await asyncio.to_thread(command.downgrade, config, "base")
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            empty = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    finally:
        await engine.dispose()
    await asyncio.to_thread(command.upgrade, config, "head")

    assert empty <= {"alembic_version"}
