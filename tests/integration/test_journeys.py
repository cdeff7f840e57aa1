"""Durable journeys on a real database: waits, exits, re-entry modes, policies, cancel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from smr.runtime import Runtime
from tests.helpers import FakeClock, auth
from tests.integration.journeys import (
    deliveries,
    event,
    order,
    outbox_texts,
    post,
    runs,
    write_playbooks,
)


@pytest.fixture
def playbooks_dir(tmp_path: Path) -> Path:
    return write_playbooks(tmp_path / "playbooks")


async def test_waits_resume_on_time_without_drift(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    started = clock.now
    await post(client, event("a-1", "contact.added"))
    await runtime.tick()
    (run,) = await runs(runtime)
    assert (run.status, run.wake_at) == ("waiting", started + timedelta(days=3))

    clock.advance(days=3, minutes=5)  # the tick comes late
    await runtime.tick()

    (run,) = await runs(runtime)
    # next local 10:00 after the intended wake (11:00 local), not after the late tick
    assert run.wake_at == datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
    assert await outbox_texts(runtime) == ["welcome", "day 3 tip"]
    clock.now = run.wake_at
    await runtime.tick()
    assert await outbox_texts(runtime) == ["welcome", "day 3 tip", "day 4 reminder"]
    assert (await runs(runtime))[0].status == "completed"


async def test_wait_template_scales_with_quantity(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    await post(client, order("o-1", "A1", quantity=2))

    (run,) = await runs(runtime)

    assert run.wake_at == clock.now + timedelta(days=50)


async def test_wait_rendering_a_non_duration_fails_the_run_with_reason(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await post(client, event("m-1", "chat.message", text="soon"))

    (run,) = await runs(runtime)
    detail = (await client.get(f"/v1/runs/{run.id}", headers=auth())).json()

    assert run.status == "failed"
    assert "soon" in (run.end_reason or "")
    errors = [t for t in detail["trace"] if t["kind"] == "error"]
    (error,) = errors
    assert "soon" in str(error)


async def test_refund_exits_only_the_matching_run_and_its_pending_send_is_skipped(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    clock.now = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)  # 22:00 local: quiet hours
    await post(client, order("o-1", "A1"))
    clock.advance(days=25)  # the marketing reminder falls due in quiet hours
    await runtime.tick()
    held = [d for d in await deliveries(runtime) if d.category == "marketing"]
    assert [(d.status, d.due_at.hour) for d in held] == [("scheduled", 1)]  # 09:00 local

    await post(client, order("r-0", "OTHER", refund=True))
    assert [r.status for r in await runs(runtime)] == ["completed"]  # reminder step done
    await post(client, order("o-2", "A2"))  # restart: a new run for the new order
    await post(client, order("r-2", "A2", refund=True))

    clock.advance(hours=12)
    await runtime.tick()
    statuses = [r.status for r in await runs(runtime)]
    assert statuses == ["completed", "exited"]
    reminder = [d for d in await deliveries(runtime) if d.category == "marketing"]
    assert [(d.status, d.skip_reason) for d in reminder] == [("sent", None)]


async def test_cancelling_a_run_before_its_send_cancels_the_delivery(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    clock.now = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)  # 22:00 local
    await post(client, event("a-1", "contact.added"))
    clock.advance(days=3)
    await runtime.tick()  # day-3 tip is deferred by quiet hours
    (run,) = await runs(runtime)
    cancel = await client.post(f"/v1/runs/{run.id}/cancel", headers=auth())
    assert cancel.status_code == 200

    clock.advance(hours=12)
    await runtime.tick()

    tip = [d for d in await deliveries(runtime) if d.text == "day 3 tip"]
    assert [d.status for d in tip] == ["cancelled"]
    trace = (await client.get(f"/v1/runs/{run.id}", headers=auth())).json()["trace"]
    by_admin = [(t["kind"], t.get("delivery_id")) for t in trace if t.get("by") == "admin"]
    assert ("delivery", tip[0].id) in by_admin
    assert any("cancelled by an admin" in str(t) for t in trace)
    again = await client.post(f"/v1/runs/{run.id}/cancel", headers=auth())
    assert again.status_code == 409


@pytest.mark.parametrize(
    ("mode", "outcomes", "statuses"),
    [
        ("single", ["started", "refused_mode"], ["waiting"]),
        ("restart", ["started", "started"], ["exited", "waiting"]),
        ("parallel", ["started", "started"], ["waiting", "waiting"]),
    ],
)
async def test_reentry_modes(
    client: httpx.AsyncClient,
    runtime: Runtime,
    playbooks_dir: Path,
    clock: FakeClock,
    mode: str,
    outcomes: list[str],
    statuses: list[str],
) -> None:
    write_playbooks(playbooks_dir, mode=mode)
    runtime.catalog.reload()

    seen = []
    for key in ("o-1", "o-2"):
        result = await post(client, order(key, key))
        detail = (await client.get(f"/v1/events/{result['event_id']}", headers=auth())).json()
        seen += [e["outcome"] for e in detail["evaluations"]]
        clock.advance(seconds=1)

    assert seen == outcomes
    assert [r.status for r in await runs(runtime)] == statuses
