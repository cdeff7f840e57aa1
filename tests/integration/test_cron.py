"""Schedule playbooks on a real database: one firing per slot, audience filters, concurrent
workers, downtime and the grace period, batched fan-out, no backfill for new playbooks."""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from smr.db import unit_of_work
from smr.eventlog import partition_of
from smr.models import CronSlot, Delivery, Run
from smr.repositories import contacts as contacts_repo
from smr.repositories import cron_slots as cron_repo
from smr.repositories import runs as runs_repo
from smr.runtime import Runtime, build_runtime
from smr.services.contacts import ContactState
from smr.services.cron import Cron
from smr.services.plan import Plan
from smr.services.processor import Processor
from smr.telemetry import Telemetry
from tests.conftest import CORE
from tests.helpers import FakeClock

HOURLY = """\
id: hourly-members
name: 会员整点提醒
trigger:
  schedule: "0 * * * *"
  audience:
    tags_any: [会员, 钻粉]
    tags_none: [退订]
    if: "contact.attributes.level >= 2"
steps:
  - send: {channel: mock, category: service, text: "{{ contact.id }} {{ trigger.data.slot }}"}
"""

DAILY = """\
id: daily-ten
name: 每日十点
trigger:
  schedule: "0 10 * * *"
steps:
  - send: {channel: mock, category: service, text: "ten o'clock"}
"""

EVERY_HOUR_THEN_WAIT = """\
id: hourly-{mode}
name: 整点（{mode}）
mode: {mode}
trigger:
  schedule: "0 * * * *"
  audience: {{tags_any: [会员]}}
steps:
  - wait: 3h
  - send: {{channel: mock, category: service, text: "three hours on"}}
"""

HOUR = timedelta(hours=1)
LEASE = timedelta(seconds=60)


@pytest.fixture
def playbooks_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "playbooks"
    shutil.copytree(CORE, directory)
    (directory / "hourly.yaml").write_text(HOURLY, encoding="utf-8")
    return directory


def make_cron(
    runtime: Runtime,
    *,
    batch_size: int = 200,
    grace: timedelta = HOUR,
    other: Runtime | None = None,
) -> Cron:
    rt = other or runtime
    settings = rt.settings.model_copy(
        update={
            "lease_seconds": int(LEASE.total_seconds()),
            "batch_size": batch_size,
            "cron_grace_seconds": int(grace.total_seconds()),
        }
    )
    return Cron(settings, sessions=rt.sessions, catalog=rt.catalog, clock=rt.clock)


async def add_contacts(runtime: Runtime, *specs: tuple[str, list[str], int | None]) -> None:
    """Contacts (id, tags, attributes.level or None for no level)."""
    now = runtime.clock()
    rows = []
    for contact_id, tags, level in specs:
        state = ContactState.blank(contact_id, now, partition=0)
        state.tags = tags
        state.attributes = {} if level is None else {"level": level}
        rows.append({**state.row(now), "partition": partition_of(contact_id)})
    async with unit_of_work(runtime.sessions) as session:
        assert len(await contacts_repo.insert_contacts(session, rows)) == len(rows)


async def add_members(runtime: Runtime, count: int) -> list[str]:
    ids = [f"m{n:03d}" for n in range(count)]
    await add_contacts(runtime, *((cid, ["会员"], 3) for cid in ids))
    return ids


async def runs_of(runtime: Runtime, playbook_id: str = "hourly-members") -> list[Run]:
    async with runtime.sessions() as session:
        stmt = select(Run).where(Run.playbook_id == playbook_id).order_by(Run.id)
        return list((await session.scalars(stmt)).all())


async def slots_of(runtime: Runtime, playbook_id: str = "hourly-members") -> list[CronSlot]:
    async with runtime.sessions() as session:
        stmt = select(CronSlot).where(CronSlot.playbook_id == playbook_id)
        return list((await session.scalars(stmt.order_by(CronSlot.slot_at))).all())


async def deliveries_of(
    runtime: Runtime, playbook_id: str = "hourly-members"
) -> list[tuple[str, str | None]]:
    async with runtime.sessions() as session:
        stmt = select(Delivery.status, Delivery.text).where(Delivery.playbook_id == playbook_id)
        rows = await session.execute(stmt)
        return [(status, text) for status, text in rows]


def local_hours(slots: list[CronSlot]) -> list[tuple[int, str]]:
    return [(s.slot_at.hour + 8, s.status) for s in slots]  # Asia/Shanghai is UTC+8


async def test_a_slot_starts_one_run_per_audience_contact(
    runtime: Runtime, clock: FakeClock
) -> None:
    await runtime.start()  # the playbook is known from 11:00
    await add_contacts(
        runtime,
        ("member", ["会员"], 3),
        ("diamond", ["钻粉", "新客"], 2),
        ("unsubscribed", ["会员", "退订"], 3),
        ("untagged", [], 3),
        ("low-level", ["会员"], 1),
        ("no-level", ["会员"], None),  # the condition fails to evaluate: skipped
    )
    clock.advance(hours=1, minutes=1)

    report = await runtime.cron.tick()

    assert (report.slots_recorded, report.runs_started) == (1, 2)
    (slot,) = await slots_of(runtime)
    assert (slot.slot_at, slot.status, slot.runs_started) == (
        datetime(2026, 11, 23, 4, 0, tzinfo=UTC),
        "done",
        2,
    )
    runs = await runs_of(runtime)
    assert sorted(r.contact_id for r in runs) == ["diamond", "member"]
    assert {(r.cron_slot_id, r.trigger_event_id) for r in runs} == {(slot.id, None)}
    # The fan-out only starts the runs, due now; the processors take their steps.
    assert {(r.status, r.pc, r.wake_at) for r in runs} == {("waiting", 0, clock())}
    assert await deliveries_of(runtime) == []

    woken = await runtime.processor.drain()
    assert (woken.runs, woken.dispatched) == (2, 2)  # the sends went out with the steps

    async with runtime.sessions() as session:
        trace = await runs_repo.trace_of(session, runs[0].id)
    assert [(e.kind, e.detail.get("event_id")) for e in trace] == [
        ("start", slot.id),
        ("send", None),
        ("end", None),
        ("delivery", None),
    ]
    assert sorted(await deliveries_of(runtime)) == [
        ("sent", "diamond 2026-11-23T04:00:00+00:00"),
        ("sent", "member 2026-11-23T04:00:00+00:00"),
    ]

    again = await runtime.cron.tick()
    assert (again.slots_recorded, again.runs_started) == (0, 0)
    assert len(await runs_of(runtime)) == 2


async def test_two_workers_fire_each_slot_once(runtime: Runtime, clock: FakeClock) -> None:
    await runtime.start()
    members = await add_members(runtime, 20)
    other = build_runtime(runtime.settings, clock=clock)  # a second process on the same rows
    try:
        workers = [make_cron(runtime, batch_size=7), make_cron(runtime, batch_size=7, other=other)]
        for _ in range(2):
            clock.advance(hours=1)
            reports = await asyncio.gather(*(w.tick() for w in workers))
            assert sum(r.slots_recorded for r in reports) == 1
            assert sum(r.runs_started for r in reports) == 20
            # Both workers take the runs' steps; single mode would refuse the next slot's
            # runs while these are active.
            processors = [runtime.processor, other.processor]
            woken = await asyncio.gather(*(p.drain() for p in processors))
            # What one gave back at its heartbeat (its share halved) the other takes at its next.
            for processor in processors:
                await processor.owner.heartbeat()
            woken += await asyncio.gather(*(p.drain() for p in processors))
            assert sum(w.runs for w in woken) == 20
    finally:
        await other.aclose()

    slots = await slots_of(runtime)
    assert [(s.status, s.runs_started) for s in slots] == [("done", 20), ("done", 20)]
    per_slot = Counter((r.cron_slot_id, r.contact_id) for r in await runs_of(runtime))
    assert set(per_slot.values()) == {1}
    assert sorted(per_slot) == sorted((s.id, m) for s in slots for m in members)


async def test_lanes_of_one_processor_advance_each_run_once(
    runtime: Runtime, clock: FakeClock
) -> None:
    await runtime.start()
    members = await add_members(runtime, 20)
    clock.advance(hours=1)
    assert (await runtime.cron.tick()).runs_started == len(members)
    # Small batches: both lanes take due runs, several times each, side by side.
    settings = runtime.settings.ingest.model_copy(update={"batch_size": 3})
    processor = Processor(
        runtime.sessions,
        catalog=runtime.catalog,
        settings=settings,
        clock=clock,
        telemetry=Telemetry(),
        dispatcher=runtime.dispatcher,
        lanes=2,
    )
    await processor.owner.heartbeat()
    assert all(processor.lanes)

    async def lane(partitions: frozenset[int] | None) -> int:
        advanced = 0
        while woken := await processor.once(partitions):
            advanced += woken.runs
        return advanced

    by_lane = await asyncio.gather(*(lane(p) for p in processor.lanes))

    assert sum(by_lane) == len(members)
    assert all(by_lane)  # the members' partitions fall in both lanes
    runs = await runs_of(runtime)
    assert {(r.status, r.contact_id) for r in runs} == {("completed", m) for m in members}
    sent_to = Counter(text.split()[0] for _status, text in await deliveries_of(runtime) if text)
    assert sent_to == Counter(members)
    assert not await processor.drain()


async def test_fan_out_resumes_from_the_cursor_in_batches(
    runtime: Runtime, clock: FakeClock
) -> None:
    await runtime.start()
    members = await add_members(runtime, 20)
    clock.advance(hours=1)
    cron = make_cron(runtime, batch_size=7)

    first = await cron.tick(max_batches=1)

    assert first.runs_started == 7
    (slot,) = await slots_of(runtime)
    assert (slot.status, slot.cursor, slot.lease_until) == ("running", members[6], None)

    second = await make_cron(runtime, batch_size=7).tick()  # any worker picks it up

    assert second.runs_started == 13
    (slot,) = await slots_of(runtime)
    assert (slot.status, slot.runs_started) == ("done", 20)
    assert sorted(r.contact_id for r in await runs_of(runtime)) == members


async def test_a_batch_written_behind_one_that_failed_does_not_land(
    runtime: Runtime, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches are written while the one before commits: when one fails, the next must not
    move the cursor past it, or its contacts would never get their runs."""
    await runtime.start()
    members = await add_members(runtime, 20)
    clock.advance(hours=1)
    writes = 0
    write = Plan.write

    async def second_fails(plan: Plan, session: AsyncSession) -> None:
        nonlocal writes
        writes += 1
        if writes == 2:
            raise RuntimeError("the database went away")
        await write(plan, session)

    monkeypatch.setattr(Plan, "write", second_fails)

    with pytest.raises(RuntimeError):
        await make_cron(runtime, batch_size=7).tick()

    (slot,) = await slots_of(runtime)
    assert (slot.status, slot.cursor, slot.runs_started) == ("running", members[6], 7)
    clock.advance(seconds=61)  # the lease of the worker that failed runs out
    assert (await make_cron(runtime, batch_size=7).tick()).runs_started == 13
    assert sorted(r.contact_id for r in await runs_of(runtime)) == members


async def test_a_dead_workers_slot_is_taken_over_after_its_lease(
    runtime: Runtime, clock: FakeClock
) -> None:
    await runtime.start()
    await add_members(runtime, 5)
    clock.advance(hours=1)
    cron = make_cron(runtime, batch_size=2)
    await cron.record_due_slots()
    async with unit_of_work(runtime.sessions) as session:  # a worker claims, then dies
        dead = await cron_repo.claim_one(session, now=clock(), lease=LEASE)
    assert dead is not None
    assert dead.lease_until is not None

    assert (await cron.tick()).runs_started == 0  # its lease still holds
    clock.advance(seconds=61)
    assert (await cron.tick()).runs_started == 5

    with pytest.raises(cron_repo.LeaseLost):
        async with unit_of_work(runtime.sessions) as session:
            await cron_repo.advance(
                session,
                dead.id,
                held=dead.lease_until,
                at=None,
                cursor="m004",
                runs_started=2,
                status="running",
                lease_until=None,
                now=clock(),
            )
    (slot,) = await slots_of(runtime)
    assert (slot.status, slot.runs_started) == ("done", 5)


async def test_after_downtime_only_the_latest_slot_within_the_grace_fires(
    runtime: Runtime, clock: FakeClock
) -> None:
    await runtime.start()
    await add_members(runtime, 3)
    clock.advance(hours=1, minutes=1)
    assert (await runtime.cron.tick()).runs_started == 3
    assert (await runtime.processor.drain()).runs == 3  # the runs end before the downtime

    clock.advance(hours=3)  # down from 12:01 to 15:01
    report = await runtime.cron.tick()

    assert (report.slots_recorded, report.runs_started) == (3, 3)
    assert local_hours(await slots_of(runtime)) == [
        (12, "done"),
        (13, "missed"),
        (14, "missed"),
        (15, "done"),
    ]
    assert len(await runs_of(runtime)) == 6


async def test_beyond_the_grace_nothing_fires(runtime: Runtime, clock: FakeClock) -> None:
    await runtime.start()
    await add_members(runtime, 3)
    cron = make_cron(runtime, grace=timedelta(minutes=30))
    clock.advance(hours=3, minutes=45)  # down from 11:00 to 14:45

    report = await cron.tick()

    assert (report.slots_recorded, report.runs_started) == (3, 0)
    assert local_hours(await slots_of(runtime)) == [(12, "missed"), (13, "missed"), (14, "missed")]
    assert await runs_of(runtime) == []
    clock.advance(minutes=20)
    assert (await cron.tick()).runs_started == 3  # the next slot fires as usual


async def test_a_new_playbook_does_not_backfill(
    runtime: Runtime, clock: FakeClock, playbooks_dir: Path
) -> None:
    await runtime.start()
    await add_members(runtime, 2)
    clock.advance(days=2, hours=-0.5)  # Wednesday 10:30, a daily 10:00 slot half an hour ago
    (playbooks_dir / "daily.yaml").write_text(DAILY, encoding="utf-8")
    runtime.catalog.reload()
    await runtime.start()

    await runtime.cron.tick()

    assert await slots_of(runtime, "daily-ten") == []
    assert await runs_of(runtime, "daily-ten") == []
    clock.advance(hours=23, minutes=31)  # Thursday 10:01
    assert (await runtime.cron.tick()).slots_recorded >= 1
    assert local_hours(await slots_of(runtime, "daily-ten")) == [(10, "done")]
    assert len(await runs_of(runtime, "daily-ten")) == 2


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        # single: the first slot's runs are still waiting, so the second slot starts none
        ("single", [("m000", 1, "waiting"), ("m001", 1, "waiting")]),
        # restart: the second slot ends them and starts its own
        (
            "restart",
            [("m000", 1, "exited"), ("m001", 1, "exited"), ("m000", 2, "waiting"),
             ("m001", 2, "waiting")],
        ),
        # parallel: both slots' runs go on
        (
            "parallel",
            [("m000", 1, "waiting"), ("m001", 1, "waiting"), ("m000", 2, "waiting"),
             ("m001", 2, "waiting")],
        ),
    ],
)  # fmt: skip
async def test_re_entry_rules_apply_to_each_slot(
    runtime: Runtime,
    clock: FakeClock,
    playbooks_dir: Path,
    mode: str,
    expected: list[tuple[str, int, str]],
) -> None:
    playbook_id = f"hourly-{mode}"
    (playbooks_dir / "every-hour.yaml").write_text(
        EVERY_HOUR_THEN_WAIT.format(mode=mode), encoding="utf-8"
    )
    runtime.catalog.reload()
    await runtime.start()
    await add_members(runtime, 2)
    for _ in range(2):
        clock.advance(hours=1)
        await runtime.cron.tick()
        await runtime.processor.drain()  # each run takes its first step: a wait of three hours

    slots = {s.id: n for n, s in enumerate(await slots_of(runtime, playbook_id), start=1)}
    runs = await runs_of(runtime, playbook_id)
    found = [(r.contact_id, slots[r.cron_slot_id or ""], r.status) for r in runs]
    assert sorted(found, key=lambda r: (r[1], r[0])) == expected
    assert {r.pc for r in runs if r.status == "waiting"} == {1}
    second = max(slots, key=slots.__getitem__)
    restarted = {f"restarted by schedule slot {second}"} if mode == "restart" else set()
    assert {r.end_reason for r in runs if r.status == "exited"} == restarted
    assert await deliveries_of(runtime, playbook_id) == []
