"""Two `smr worker` processes take events from the log while events keep coming, and are
killed with SIGKILL at random moments and started again: every event is processed exactly
once (one run each, each order counted once), and each customer's events in the order they
were accepted (the last name given is the one kept). On SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import functools
import random
import signal
import subprocess
from pathlib import Path

from sqlalchemy import func, select

from smr.eventlog import EventStatus
from smr.models import Contact, Event, EventLogEntry, Run
from smr.runtime import Runtime
from smr.schemas import parse_events
from tests.conftest import CORE
from tests.e2e.processes import eventually, smr_env, start, stop
from tests.helpers import order_event

CUSTOMERS, EACH, CHUNK, KILLS = 40, 40, 80, 6


async def scalar(runtime: Runtime, stmt: object) -> int:
    async with runtime.sessions() as session:
        return int(await session.scalar(stmt) or 0)  # type: ignore[call-overload]


def events() -> list[dict[str, object]]:
    """Each customer's orders, interleaved with the others', each naming the customer anew."""
    made = []
    for i in range(EACH):
        for c in range(CUSTOMERS):
            event = order_event(f"c{c}-{i}", phone=f"1380000{c:04d}")
            event["contact"]["name"] = f"name-{i}"
            made.append(event)
    return made


async def test_kill_9_under_load_processes_each_event_once_and_in_order(
    runtime: Runtime, tmp_path: Path
) -> None:
    env = smr_env(
        SMR_DATABASE_URL=runtime.settings.effective_database_url,
        SMR_PLAYBOOKS_DIR=str(CORE),
        SMR_DATA_DIR=str(tmp_path / "data"),
        SMR_INGEST__BATCH_SIZE="40",
        SMR_INGEST__LEASE_SECONDS="2",
        SMR_TICK_SECONDS="0.5",
    )
    rng = random.Random(20261207)
    logs = [tmp_path / "worker-0.log", tmp_path / "worker-1.log"]
    workers: list[subprocess.Popen[bytes]] = [start(["worker"], env=env, log=log) for log in logs]
    processed = select(func.count()).select_from(Event).where(Event.status != "pending")
    try:
        kills = 0
        todo = events()
        for begin in range(0, len(todo), CHUNK):
            chunk = parse_events({"events": todo[begin : begin + CHUNK]})
            # Counted before the chunk is accepted: the workers may take all of it at once.
            before = await scalar(runtime, processed)
            await runtime.ingest(chunk, source="api")
            if kills < KILLS and rng.random() < 0.5:
                # Mid-batch: once the workers have started on the chunk.
                await eventually(functools.partial(_moved, runtime, processed, before))
                await asyncio.sleep(rng.uniform(0, 0.05))
                victim = rng.randrange(len(workers))
                stop(workers[victim], sig=signal.SIGKILL)
                workers[victim] = start(["worker"], env=env, log=logs[victim])
                kills += 1
        assert kills == KILLS
        log_size = select(func.count()).select_from(EventLogEntry)
        await eventually(lambda: _empty(runtime, log_size), limit=120)
    finally:
        for worker in workers:
            stop(worker)

    total = CUSTOMERS * EACH
    by_status = await _by_status(runtime)
    assert by_status == {EventStatus.PROCESSED: total}
    runs_per_event = (
        select(Run.trigger_event_id, func.count())
        .where(Run.playbook_id == "order-thank-you")
        .group_by(Run.trigger_event_id)
    )
    async with runtime.sessions() as session:
        counts = [n for _event, n in await session.execute(runs_per_event)]
        contacts = (await session.scalars(select(Contact))).all()
    assert len(counts) == total
    assert set(counts) == {1}
    assert len(contacts) == CUSTOMERS
    assert {c.orders for c in contacts} == {EACH}
    assert {c.name for c in contacts} == {f"name-{EACH - 1}"}


async def _moved(runtime: Runtime, processed: object, before: int) -> bool:
    return await scalar(runtime, processed) > before


async def _empty(runtime: Runtime, log_size: object) -> bool:
    return await scalar(runtime, log_size) == 0


async def _by_status(runtime: Runtime) -> dict[str, int]:
    async with runtime.sessions() as session:
        counted = select(Event.status, func.count().label("n")).group_by(Event.status)
        rows = await session.execute(counted)
        return {row.status: row.n for row in rows}
