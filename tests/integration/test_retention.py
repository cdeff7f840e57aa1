"""The retention policy: rows older than their table's days pruned in batches, on every test
database, and what it never prunes (events waiting in the log, or read by a run not ended)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from smr.api.app import create_app
from smr.config import RetentionSettings
from smr.models import (
    ContactIdentity,
    DeliveryAttempt,
    Event,
    EventLogEntry,
    MockOutbox,
    PeriodicSlot,
    Run,
    TraceEntry,
)
from smr.runtime import Runtime, build_runtime
from tests.conftest import CORE, make_settings
from tests.helpers import INGEST, FakeClock, auth, keeping_up, order_event

#: A run that waits two months after a customer adds a staff account: its trigger event is read
#: when it wakes.
LONG_CARE = """
id: long-care
name: 两个月后关怀
trigger: {event: contact.added}
steps:
  - wait: 60d
  - send: {channel: wecom, category: service, text: "好久不见"}
"""
DAYS = 30
LATE_PHONE = "13600000000"


def added(key: str) -> dict[str, Any]:
    return {
        "id": key,
        "type": "contact.added",
        "contact": {"wecom_userid": f"wm-{key}"},
        "data": {"welcome_code": f"code-{key}"},
    }


@pytest.fixture
def playbooks_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "playbooks"
    shutil.copytree(CORE, folder)
    (folder / "long-care.yaml").write_text(LONG_CARE.lstrip(), encoding="utf-8")
    return folder


@pytest.fixture
async def runtime(
    database_url: str, playbooks_dir: Path, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Runtime]:
    retention = RetentionSettings(
        events_days=DAYS, trace_days=DAYS, attempts_days=DAYS, outbox_days=DAYS, batch_size=2
    )
    settings = make_settings(database_url, playbooks_dir, tmp_path / "data", retention=retention)
    rt = build_runtime(settings, clock=clock)
    yield rt
    await rt.aclose()


async def post(runtime: Runtime, *events: dict[str, Any], process: bool = True) -> list[str]:
    transport = httpx.ASGITransport(app=create_app(runtime))
    hooks = keeping_up(runtime) if process else {}
    async with httpx.AsyncClient(transport=transport, base_url="http://t", event_hooks=hooks) as c:
        answers = [await c.post("/v1/events", json=e, headers=auth(INGEST)) for e in events]
    assert all(a.status_code == 202 for a in answers), [a.text for a in answers]
    return [a.json()["event_id"] for a in answers]


async def count(runtime: Runtime, model: Any, *where: Any) -> int:
    async with runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def oldest(runtime: Runtime, column: Any) -> Any:
    async with runtime.sessions() as session:
        return await session.scalar(select(func.min(column)))


async def aged(runtime: Runtime, clock: FakeClock) -> dict[str, Any]:
    """Day 0: two orders and a staff account added (its long-care run waits 60 days), processed;
    day 40: one more order, processed. One more order accepted on day 0 still waits in the log.
    The clock is left on day 40."""
    thanked, welcomed = await post(runtime, order_event("o-1"), added("a-1"))
    await post(runtime, order_event("o-2", phone="13900000000"))
    old = {m: await count(runtime, m) for m in (TraceEntry, DeliveryAttempt, MockOutbox)}
    clock.advance(days=DAYS + 10)
    (recent,) = await post(runtime, order_event("o-3", phone="13700000000"))
    young = {m: await count(runtime, m) - n for m, n in old.items()}
    clock.advance(days=-(DAYS + 10))
    (pending,) = await post(runtime, order_event("o-4", phone=LATE_PHONE), process=False)
    clock.advance(days=DAYS + 10)
    kept = {welcomed, recent, pending}
    return {
        "old": old,
        "young": young,
        "kept": kept,
        "gone": thanked,
        "welcomed": welcomed,
        "pending": pending,
    }


async def test_rows_past_their_days_are_pruned_and_the_rest_kept(
    runtime: Runtime, clock: FakeClock
) -> None:
    story = await aged(runtime, clock)
    assert runtime.pruner is not None

    pruned = await runtime.pruner.prune()

    old = story["old"]
    assert pruned == {
        "events": 2,  # o-1 and o-2: a-1 is read by the waiting long-care run, o-4 not processed
        "trace": old[TraceEntry],
        "attempts": old[DeliveryAttempt],
        "outbox": old[MockOutbox],
    }
    async with runtime.sessions() as session:
        events = set(await session.scalars(select(Event.id)))
        runs = (await session.execute(select(Run.playbook_id, Run.trigger_event_id))).all()
    assert events == story["kept"]
    assert [r.trigger_event_id for r in runs if r.playbook_id == "long-care"] == [story["welcomed"]]
    # The runs of the pruned events forgot them: o-1's and o-2's thank-you.
    assert sum(r.trigger_event_id is None for r in runs) == 2
    assert await count(runtime, EventLogEntry) == 1
    for model, left in story["young"].items():
        assert await count(runtime, model) == left
    before = clock.now - timedelta(days=DAYS)
    assert await oldest(runtime, TraceEntry.at) >= before
    assert await runtime.pruner.prune() == dict.fromkeys(pruned, 0)  # nothing left to prune


async def test_the_ticks_prune_once_an_hour(runtime: Runtime, clock: FakeClock) -> None:
    story = await aged(runtime, clock)

    await runtime.tick()  # processes o-4 first, then prunes in the background
    await runtime.settle()

    # o-4, judged as of its receipt on day 0, was traced after o-3: its entries wait for a pass
    # after o-3's go (pruning follows the key, and never takes a row younger than its days).
    # (o-4 itself went: old, processed, read by no run still waiting.)
    buyer = select(ContactIdentity.contact_id).where(ContactIdentity.value == LATE_PHONE)
    late = Run.contact_id.in_(buyer)
    traced_late = await count(
        runtime, TraceEntry, TraceEntry.run_id.in_(select(Run.id).where(late))
    )
    assert traced_late > 0
    assert await count(runtime, TraceEntry) == story["young"][TraceEntry] + traced_late
    assert await count(runtime, Event, Event.id == story["gone"]) == 0
    clock.advance(minutes=20)
    await runtime.tick()  # the same hour: no second pass
    clock.advance(days=DAYS + 1)
    await runtime.tick()  # a month on: the long-care runs woke and ended, everything is old
    await runtime.settle()
    assert await count(runtime, Event) == 0
    assert await count(runtime, PeriodicSlot, PeriodicSlot.name == "retention") == 2


def test_without_a_retention_nothing_is_pruned() -> None:
    assert RetentionSettings().model_dump(exclude={"batch_size"}) == dict.fromkeys(
        ["events_days", "trace_days", "attempts_days", "outbox_days"]
    )
