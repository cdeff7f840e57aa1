"""A unit of work commits when its block ends, rolls back on any exception, and gives its
connection back to the pool either way, cancelled or not."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from smr.db import unit_of_work
from smr.models import Contact
from smr.repositories import contacts as repo
from smr.runtime import Runtime
from tests.integration.test_statements import _row


class Boom(Exception):
    pass


async def _stored(runtime: Runtime) -> set[str]:
    async with unit_of_work(runtime.sessions) as session:
        return set((await session.scalars(select(Contact.id))).all())


def _checked_out(runtime: Runtime) -> int:
    pool = runtime.engine.sync_engine.pool
    return int(pool.checkedout())  # type: ignore[attr-defined]


async def test_commits_at_the_end_rolls_back_on_an_exception(runtime: Runtime) -> None:
    async with unit_of_work(runtime.sessions) as session:
        assert await repo.insert_contacts(session, [_row("ct_kept")])

    async def failing() -> None:
        async with unit_of_work(runtime.sessions) as session:
            assert await repo.insert_contacts(session, [_row("ct_gone")])
            raise Boom

    with pytest.raises(Boom):
        await failing()

    assert await _stored(runtime) == {"ct_kept"}
    assert _checked_out(runtime) == 0


async def test_a_cancelled_unit_of_work_writes_nothing_and_frees_its_connection(
    runtime: Runtime,
) -> None:
    inside = asyncio.Event()

    async def stuck() -> None:
        async with unit_of_work(runtime.sessions) as session:
            assert await repo.insert_contacts(session, [_row("ct_cancelled")])
            inside.set()
            await asyncio.Event().wait()  # until cancelled

    task = asyncio.create_task(stuck())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert await _stored(runtime) == set()
    assert _checked_out(runtime) == 0
