"""Per-channel send rate limits at dispatch: what passes the window waits, scheduled, with a
``rate_limited`` entry in the run log, and is sent once the window frees, on every worker."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text, update

from smr.channels import RetriableSendError
from smr.db import unit_of_work
from smr.models import Delivery, SendHit, TraceEntry
from smr.repositories import deliveries as deliveries_repo
from smr.runtime import Runtime, build_runtime
from smr.schemas import parse_events
from smr.services import addressing, policy, ratelimits
from tests.conftest import make_settings
from tests.helpers import FakeClock, auth
from tests.integration.journeys import deliveries, post
from tests.integration.test_dispatch import ScriptedAdapter, route_all

POLICIES = """\
timezone: Asia/Shanghai
rate_limits:
  - {channel: staff, max: 30, per: 1m, key: staff}
"""

HANDOFF = """\
id: handoff
name: 转人工
mode: parallel
trigger: {event: chat.message}
steps:
  - notify_staff: {text: "客户在等您：{{ event.data.n }}"}
"""


BY_CONTACT = """\
timezone: Asia/Shanghai
rate_limits:
  - {channel: staff, max: 2, per: 1m, key: contact}
"""


@pytest.fixture
def policies() -> str:
    return POLICIES


@pytest.fixture
def playbooks_dir(tmp_path: Path, policies: str) -> Path:
    folder = tmp_path / "playbooks"
    folder.mkdir()
    (folder / "policies.yaml").write_text(policies, encoding="utf-8")
    (folder / "handoff.yaml").write_text(HANDOFF, encoding="utf-8")
    return folder


@pytest.fixture
def tuning() -> dict[str, int]:
    """Settings a test sets apart (``batch_size``, ``dispatch_lanes``)."""
    return {}


@pytest.fixture
async def runtime(
    database_url: str, playbooks_dir: Path, tmp_path: Path, clock: FakeClock, tuning: dict[str, int]
) -> AsyncIterator[Runtime]:
    settings = make_settings(database_url, playbooks_dir, tmp_path / "data", **tuning)
    rt = build_runtime(settings, clock=clock)
    yield rt
    await rt.aclose()


def handoffs(
    start: int, count: int, *, staff: str = "zhangsan", phone: str = "13800000000"
) -> dict[str, Any]:
    events = [
        {
            "id": f"{staff}-{n}",
            "type": "chat.message",
            "occurred_at": "2026-11-23T10:00:00+08:00",
            "contact": {"phone": phone},
            "data": {"staff": staff, "n": n},
        }
        for n in range(start, start + count)
    ]
    return {"events": events}


async def statuses(runtime: Runtime) -> dict[str, int]:
    counted: dict[str, int] = {}
    for d in await deliveries(runtime):
        counted[d.status] = counted.get(d.status, 0) + 1
    return counted


async def test_a_staff_member_gets_30_a_minute_and_the_rest_wait_for_the_window(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    start = clock.now
    await post(client, handoffs(0, 20))
    await post(client, handoffs(0, 2, staff="lisi"))  # counted apart
    await runtime.tick()
    clock.advance(seconds=30)
    await post(client, handoffs(20, 15))

    await runtime.tick()

    assert await statuses(runtime) == {"sent": 32, "scheduled": 5}
    waiting = [d for d in await deliveries(runtime) if d.status == "scheduled"]
    assert {(d.due_at, d.attempts, d.skip_reason) for d in waiting} == {
        (start + timedelta(minutes=1), 0, None)
    }
    for delivery in waiting:
        run = (await client.get(f"/v1/runs/{delivery.run_id}", headers=auth())).json()
        (entry,) = [t for t in run["trace"] if t["kind"] == "rate_limited"]
        assert entry["delivery_id"] == delivery.id
        assert (entry["channel"], entry["status"], entry["attempt"]) == ("staff", "scheduled", 0)
        assert entry["limit"] == {"max": 30, "per": "1m", "key": "staff", "of": "zhangsan"}
        assert entry["next_at"] == (start + timedelta(minutes=1)).isoformat()
        assert entry["response"].startswith(
            "rate limit: 30 sends on staff to staff zhangsan in 1m (limit 30)"
        )

    clock.now = start + timedelta(seconds=59)
    await runtime.tick()
    assert await statuses(runtime) == {"sent": 32, "scheduled": 5}
    clock.now = start + timedelta(minutes=1)
    await runtime.tick()
    assert await statuses(runtime) == {"sent": 37}


async def test_what_waits_in_one_batch_is_spread_over_the_windows_to_come(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    start = clock.now
    await post(client, handoffs(0, 70))

    await runtime.tick()

    waiting = [d for d in await deliveries(runtime) if d.status == "scheduled"]
    due = sorted(d.due_at - start for d in waiting)
    assert due == [timedelta(minutes=1)] * 30 + [timedelta(minutes=2)] * 10
    last = max(waiting, key=lambda d: d.due_at)
    run = (await client.get(f"/v1/runs/{last.run_id}", headers=auth())).json()
    (entry,) = [t for t in run["trace"] if t["kind"] == "rate_limited"]
    found = re.search(r"in 1m \(limit 30\), (\d+) waiting before it; waits", entry["response"])
    assert found is not None
    assert 30 <= int(found[1]) < 40  # those of the first window, and of this one before it


@pytest.mark.parametrize("tuning", [{"batch_size": 50, "dispatch_lanes": 1}])
async def test_what_waits_goes_in_the_slot_it_reserved_first_come_first_served(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    """300 handoffs to one staff member, 30 a minute, in ten posts of 30, each sent as it is
    processed: each batch queues behind the slots reserved before it, so each one held back
    has one ``rate_limited`` entry and goes in the slot it names (its tick claims 50 at a
    time), 30 a minute, in the order they came (one lane: concurrent lanes queue their
    batches in the order they take the window)."""
    start = clock.now
    for chunk in range(10):
        await post(client, handoffs(30 * chunk, 30))
        clock.advance(milliseconds=1)

    for m in range(11):
        clock.now = start + timedelta(minutes=m)
        await runtime.tick()

    sent = {d.id: d.sent_at for d in await deliveries(runtime) if d.sent_at is not None}
    minute = {d_id: (at - start) // timedelta(minutes=1) for d_id, at in sent.items()}
    assert sorted(minute.values()) == [m for m in range(10) for _ in range(30)]
    for delivery in await deliveries(runtime):  # "客户在等您：<n>": the n-th handoff
        n = int((delivery.text or "").rpartition("：")[2])
        assert minute[delivery.id] == n // 30
    async with runtime.sessions() as session:
        held = select(TraceEntry.detail).where(TraceEntry.kind == "rate_limited")
        entries = list((await session.scalars(held)).all())
    assert len(entries) == 270
    assert len({e["delivery_id"] for e in entries}) == 270
    for entry in entries:
        assert entry["next_at"] == sent[entry["delivery_id"]].isoformat()


async def test_a_reserved_slot_waits_for_as_long_as_the_slot_before_it_went_late(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    """The slots of minute 1 go 30 s late: those of minute 2 would make 40 sends within a
    minute on their slot, so they wait the 30 s, and the limit holds."""
    start = clock.now
    await post(client, handoffs(0, 70))
    await runtime.tick()
    clock.now = start + timedelta(seconds=90)
    await runtime.tick()
    assert await statuses(runtime) == {"sent": 60, "scheduled": 10}

    clock.now = start + timedelta(minutes=2)
    await runtime.tick()

    waiting = [d for d in await deliveries(runtime) if d.status == "scheduled"]
    assert {d.due_at for d in waiting} == {start + timedelta(seconds=150)}
    assert len(waiting) == 10
    clock.now = start + timedelta(seconds=150)
    await runtime.tick()
    assert await statuses(runtime) == {"sent": 70}


async def test_hits_older_than_the_window_are_deleted(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    await post(client, handoffs(0, 3))
    await runtime.tick()
    clock.advance(minutes=5)
    await post(client, handoffs(3, 1))

    await runtime.tick()

    async with runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(SendHit)) == 1


@pytest.mark.parametrize("policies", [BY_CONTACT])
async def test_hits_of_buckets_no_claim_counts_again_are_swept(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    """A bucket per contact is seldom counted again: each dispatcher deletes, once a minute,
    the hits of every bucket that are older than the longest window."""
    for n in range(3):
        await post(client, handoffs(n, 1, phone=f"1380000000{n}"))
        await runtime.tick()
    clock.advance(seconds=61)
    await post(client, handoffs(3, 1, phone="13800000003"))

    await runtime.tick()

    async with runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(SendHit)) == 1


async def lock_waited_for(runtime: Runtime) -> None:
    """Until some transaction waits for an advisory lock."""
    query = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
    while True:
        async with runtime.sessions() as session:
            if await session.scalar(query):
                return
        await asyncio.sleep(0.01)


async def failed_first_tries(runtime: Runtime, tmp_path: Path, body: dict[str, Any]) -> None:
    """``body``'s handoffs processed by another worker, whose policies set no rate limit and
    whose first try of each failed: ``scheduled`` again, due at once, and no send counted."""
    folder = tmp_path / "no-limits"
    folder.mkdir()
    (folder / "policies.yaml").write_text("timezone: Asia/Shanghai\n", encoding="utf-8")
    (folder / "handoff.yaml").write_text(HANDOFF, encoding="utf-8")
    settings = runtime.settings.model_copy(update={"playbooks_dir": folder})
    other = build_runtime(settings, clock=runtime.clock)
    try:
        events = parse_events(body)
        failures = [RetriableSendError("503") for _ in events]
        route_all(other, ScriptedAdapter(*failures), draw=lambda: 0.0)  # no jitter: due now
        await other.ingest(events, source="api")
        assert await other.process_pending() == len(events)
        await other.processor.owner.leave()
    finally:
        await other.aclose()


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_the_limit_holds_across_workers(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock, tmp_path: Path
) -> None:
    """Another worker has let 20 through the gate and not committed yet: a claim meanwhile
    waits for it, then counts its 20 and lets 10 through, not 30."""
    await failed_first_tries(runtime, tmp_path, handoffs(0, 35))
    limits = ratelimits.limits_of(runtime.routes, runtime.catalog.policies)
    now, lease = clock(), timedelta(seconds=60)

    async with unit_of_work(runtime.sessions) as other_worker:
        held = await deliveries_repo.claim_due(
            other_worker, now=now, lease=lease, limit=20, resendable=[]
        )
        to = await addressing.recipients(other_worker, held)
        items = [(d, to[d.id], policy.Send()) for d in held]
        decided = await ratelimits.apply(other_worker, items, limits=limits, now=now)
        assert decided == [policy.Send()] * 20
        tick = asyncio.create_task(runtime.dispatcher.tick())
        waits = asyncio.create_task(lock_waited_for(runtime))
        await asyncio.wait({tick, waits}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        waits.cancel()
    await tick

    assert await statuses(runtime) == {"sending": 20, "sent": 10, "scheduled": 5}


async def test_deliveries_due_at_the_same_moment_are_claimed_first_come_first_served(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    failures = [RetriableSendError("503") for _ in range(6)]
    route_all(runtime, ScriptedAdapter(*failures))  # scheduled again, to claims
    for n in range(6):
        await post(client, handoffs(n, 1))
        clock.advance(milliseconds=1)
    created = sorted(d.id for d in await deliveries(runtime))
    async with unit_of_work(runtime.sessions) as session:
        for delivery_id in reversed(created):  # the rows move, newest first
            moved = update(Delivery).where(Delivery.id == delivery_id).values(due_at=clock())
            await session.execute(moved)

    async with unit_of_work(runtime.sessions) as session:
        claimed = await deliveries_repo.claim_due(
            session, now=clock(), lease=timedelta(seconds=60), limit=3, resendable=[]
        )

    assert [d.id for d in claimed] == created[:3]


def number_of(delivery: Delivery) -> int:
    found = re.search(r"(\d+)$", delivery.text or "")
    assert found is not None
    return int(found[1])


async def test_cancelled_deliveries_give_back_the_slots_they_reserved(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    start = clock.now
    await post(client, handoffs(0, 300))
    await runtime.tick()
    waiting = [d.id for d in await deliveries(runtime) if d.status == "scheduled"]
    async with unit_of_work(runtime.sessions) as session:  # an admin cancels the broadcast
        await session.execute(
            update(Delivery).where(Delivery.id.in_(waiting)).values(status="cancelled")
        )

    clock.now = start + timedelta(minutes=2)
    await post(client, handoffs(1000, 1))
    await runtime.tick()

    (new,) = [d for d in await deliveries(runtime) if number_of(d) == 1000]
    assert (new.status, new.sent_at) == ("sent", clock.now)  # not after 270 slots of nothing


@pytest.mark.parametrize("tuning", [{"dispatch_lanes": 1}])  # the order of one lane
async def test_a_late_tick_does_not_cost_a_reserved_slot_its_place(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    start = clock.now
    await post(client, handoffs(0, 120))
    await runtime.tick()  # 30 go, 30 reserve 1:00, 30 2:00, 30 3:00
    slot = {d.id: d.due_at for d in await deliveries(runtime) if d.status == "scheduled"}
    assert sorted(set(slot.values())) == [start + timedelta(minutes=m) for m in (1, 2, 3)]

    for minutes in (2.5, 3.5, 4.5, 5.5):  # the tick of 1:00 never comes
        clock.now = start + timedelta(minutes=minutes)
        await runtime.tick()

    sent = {d.id: d.sent_at or start for d in await deliveries(runtime) if d.id in slot}
    assert start not in sent.values()  # every one was sent
    first = [i for i in slot if slot[i] == start + timedelta(minutes=1)]
    # its slot, kept: not sent to the back of the queue behind the slots of 2:00 and 3:00
    assert {sent[i] for i in first} == {start + timedelta(minutes=2.5)}
    times = [t for d in await deliveries(runtime) if (t := d.sent_at)]
    per = timedelta(minutes=1)
    assert max(sum(1 for u in times if t - per < u <= t) for t in times) == 30
