"""The event log: accepting only appends; processors take events in order per contact, one
owner per partition; back-pressure; one bad event never holds back the others."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from smr.api.app import create_app
from smr.eventlog import PARTITIONS, EventStatus
from smr.models import Contact, Event, EventLogEntry, Run
from smr.runtime import Runtime, build_runtime
from smr.schemas import parse_events
from smr.services import processing
from smr.services.partition_owner import PartitionOwner
from smr.services.processor import Processor
from tests.conftest import make_settings
from tests.helpers import INGEST, FakeClock, auth, order_event


async def count(runtime: Runtime, model: type[object], *where: object) -> int:
    async with runtime.sessions() as session:
        stmt = select(func.count()).select_from(model).where(*where)  # type: ignore[arg-type]
        return int(await session.scalar(stmt) or 0)


def added(key: str, userid: str) -> dict[str, object]:
    return {
        "id": key,
        "type": "contact.added",
        "occurred_at": "2026-11-23T10:00:00+08:00",
        "contact": {"wecom_userid": userid, "attributes": {"wecom_owner": "zhangsan"}},
        "data": {"welcome_code": f"code-{key}"},
    }


@pytest.fixture
async def small_batches(
    database_url: str, playbooks_dir: Path, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Runtime]:
    settings = make_settings(
        database_url,
        playbooks_dir,
        tmp_path / "data",
        ingest={"batch_size": 50, "max_backlog": 300},
    )
    rt = build_runtime(settings, clock=clock)
    yield rt
    await rt.aclose()


async def test_accepting_stores_the_event_pending_and_nothing_else(
    accepting_client: httpx.AsyncClient, runtime: Runtime
) -> None:
    posted = await accepting_client.post(
        "/v1/events", json=order_event("o-1"), headers=auth(INGEST)
    )

    assert posted.status_code == 202
    event_id = posted.json()["event_id"]
    pending = (await accepting_client.get(f"/v1/events/{event_id}", headers=auth())).json()
    assert (pending["status"], pending["contact_id"], pending["evaluations"]) == (
        "pending",
        None,
        [],
    )
    assert pending["processed_at"] is None
    assert await count(runtime, Contact) == 0
    assert await count(runtime, Run) == 0

    assert await runtime.process_pending() == 1

    done = (await accepting_client.get(f"/v1/events/{event_id}", headers=auth())).json()
    assert done["status"] == "processed"
    assert done["contact_id"] is not None
    assert [e["playbook"] for e in done["evaluations"] if e["outcome"] == "started"] == [
        "order-thank-you"
    ]
    assert await count(runtime, EventLogEntry) == 0


async def test_a_repeat_is_a_duplicate_while_pending_and_after(
    accepting_client: httpx.AsyncClient, runtime: Runtime
) -> None:
    first = await accepting_client.post("/v1/events", json=order_event("o-1"), headers=auth(INGEST))
    pending_repeat = await accepting_client.post(
        "/v1/events", json=order_event("o-1"), headers=auth(INGEST)
    )
    await runtime.process_pending()
    late_repeat = await accepting_client.post(
        "/v1/events", json=order_event("o-1"), headers=auth(INGEST)
    )

    event_id = first.json()["event_id"]
    for repeat in (pending_repeat, late_repeat):
        assert repeat.json() == {"id": "o-1", "status": "duplicate", "event_id": event_id}
    assert await count(runtime, Event) == 1
    assert await runtime.process_pending() == 0
    assert await count(runtime, Run) == 1


async def test_events_of_one_contact_are_processed_in_the_order_accepted(
    small_batches: Runtime,
) -> None:
    runtime = small_batches
    # Names are applied in order: the last event's name wins. The WeCom id links them once
    # the first is processed; the later ones name only the phone.
    first = order_event("o-0", phone="13800000001")
    first["contact"]["wecom_userid"] = "wm-1"
    later = [order_event(f"o-{i}", phone="13800000001") for i in range(1, 30)]
    for i, event in enumerate([first, *later]):
        event["contact"]["name"] = f"name-{i}"
    others = [order_event(f"x-{i}", phone=f"1390000{i:04d}") for i in range(60)]
    mixed = [first, *[e for pair in zip(later, others, strict=False) for e in pair], *others[29:]]
    for start in range(0, len(mixed), 7):  # several requests, two batches
        await runtime.ingest(parse_events({"events": mixed[start : start + 7]}), source="api")

    assert await runtime.process_pending() == len(mixed)

    async with runtime.sessions() as session:
        contact = (
            await session.execute(select(Contact).where(Contact.orders == len(later) + 1))
        ).scalar_one()
    assert contact.name == f"name-{len(later)}"
    assert await count(runtime, Contact) == 1 + len(others)


async def test_a_contact_added_goes_before_a_backlog_of_orders(small_batches: Runtime) -> None:
    runtime = small_batches
    orders = [order_event(f"o-{i}", phone=f"1380000{i:04d}") for i in range(200)]
    await runtime.ingest(parse_events({"events": orders}), source="api")
    report = await runtime.ingest(parse_events(added("a-1", "wm-new")), source="wecom")

    assert (await runtime.processor.once()).events > 0  # one batch of 50, and the urgent event

    async with runtime.sessions() as session:
        welcome = await session.get(Event, report.results[0].event_id)
        waiting = await session.scalar(select(func.count()).select_from(EventLogEntry))
    assert welcome is not None
    assert welcome.status == EventStatus.PROCESSED
    assert [e["playbook"] for e in welcome.evaluations if e["outcome"] == "started"] == [
        "welcome-new-contact"
    ]
    assert waiting == 200 - 50


async def test_over_the_backlog_bound_accepting_answers_429_and_stores_nothing(
    small_batches: Runtime,
) -> None:
    runtime = small_batches
    await runtime.ingest(
        parse_events({"events": [order_event(f"o-{i}") for i in range(301)]}), source="api"
    )
    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://smr.test") as client:
        refused = await client.post("/v1/events", json=order_event("late"), headers=auth(INGEST))
        # WeCom's callbacks are never refused for the backlog (see test_wecom_callback).

        assert refused.status_code == 429
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert int(refused.headers["Retry-After"]) >= 1
        async with runtime.sessions() as session:
            assert await session.scalar(select(Event.id).where(Event.key == "late")) is None

        await runtime.process_pending()
        runtime.gauge.forget()  # read again now, not within the second
        again = await client.post("/v1/events", json=order_event("late"), headers=auth(INGEST))
    assert again.status_code == 202
    assert again.json()["status"] == "accepted"


@pytest.mark.parametrize("bad", [2, 5], ids=["an-order", "an-urgent-welcome"])
async def test_an_event_that_fails_alone_is_set_aside_and_the_rest_go_on(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, bad: int
) -> None:
    # The welcome is taken first (urgent): the one that fails must be the one set aside.
    events = [order_event(f"o-{i}", phone=f"1380000{i:04d}") for i in range(5)]
    report = await runtime.ingest(
        parse_events({"events": [*events, added("a-1", "wm-1")]}), source="api"
    )
    poisoned = report.results[bad].event_id
    real = processing.process

    async def failing(session, batch, **kwargs):  # type: ignore[no-untyped-def]
        if any(e.id == poisoned for e in batch):
            raise ValueError("cannot read this one")
        return await real(session, batch, **kwargs)

    monkeypatch.setattr("smr.services.processor.process", failing)

    assert await runtime.process_pending() == 6

    async with runtime.sessions() as session:
        rows = {e.id: e for e in (await session.scalars(select(Event))).all()}
    assert rows[poisoned].status == EventStatus.FAILED
    assert "cannot read this one" in rows[poisoned].evaluations[0]["error"]
    assert [e.status for i, e in rows.items() if i != poisoned] == [EventStatus.PROCESSED] * 5
    assert await count(runtime, Run) == 5
    assert await count(runtime, EventLogEntry) == 0


async def test_partitions_are_shared_fairly_and_never_held_twice(
    runtime: Runtime, clock: FakeClock
) -> None:
    lease = timedelta(seconds=15)
    a = PartitionOwner(runtime.sessions, lease=lease, clock=clock, name="a")
    b = PartitionOwner(runtime.sessions, lease=lease, clock=clock, name="b")

    assert len(await a.heartbeat()) == PARTITIONS
    assert await b.heartbeat() == []  # a holds all, for now
    await a.heartbeat()  # a sees b, gives half back
    await b.heartbeat()
    assert len(a.held) == len(b.held) == PARTITIONS // 2
    assert not set(a.held) & set(b.held)

    # a dies: b takes its partitions when a's leases run out, not before.
    clock.advance(seconds=10)
    assert len(await b.heartbeat()) == PARTITIONS // 2
    clock.advance(seconds=10)
    assert len(await b.heartbeat()) == PARTITIONS
    # a comes back from a pause: its fence finds nothing held, so it processes nothing.
    async with runtime.sessions() as session:
        assert await a.fence(session) == []


async def test_a_lane_takes_only_the_events_of_its_own_partitions(
    runtime: Runtime, clock: FakeClock
) -> None:
    events = [order_event(f"o-{i}", phone=f"1380000{i:04d}") for i in range(40)]
    await runtime.ingest(parse_events({"events": events}), source="api")
    async with runtime.sessions() as session:
        logged = (await session.scalars(select(EventLogEntry.partition))).all()
    processor = Processor(
        runtime.sessions,
        catalog=runtime.catalog,
        settings=runtime.settings.ingest,
        clock=clock,
        telemetry=runtime.telemetry,
        dispatcher=runtime.dispatcher,
        lanes=2,
    )
    even, odd = processor.lanes
    assert even is not None
    assert odd is not None
    assert even | odd == set(range(PARTITIONS))
    assert not even & odd

    assert (await processor.once(even)).events == sum(1 for p in logged if p in even)
    async with runtime.sessions() as session:
        left = (await session.scalars(select(EventLogEntry.partition))).all()
    assert sorted(left) == sorted(p for p in logged if p in odd)
    assert (await processor.once(odd)).events == len(left)
    assert await count(runtime, EventLogEntry) == 0
    assert await count(runtime, Run) == len(events)
