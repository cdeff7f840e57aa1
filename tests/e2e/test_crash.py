"""Kill -9 `smr serve` in the middle of processing 2,000 orders and sending the deliveries they
make due, start it again: every delivery is sent, and the mock outbox holds each exactly once;
only what the kill left in flight was sent a second time (and deduplicated by the mock), and
each delivery recorded one send."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from smr.models import Delivery, DeliveryAttempt, EventLogEntry, MockOutbox
from smr.runtime import Runtime
from tests.conftest import CORE
from tests.e2e.processes import eventually, smr_env, start, stop
from tests.helpers import INGEST, auth, order_event

DELIVERIES = 2000

pytestmark = pytest.mark.postgres


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(postgres_url: str) -> str:
    return postgres_url


async def count(runtime: Runtime, *conditions: object) -> int:
    async with runtime.sessions() as session:
        stmt = select(func.count()).select_from(Delivery).where(*conditions)  # type: ignore[arg-type]
        return int(await session.scalar(stmt) or 0)


async def outbox_rows(runtime: Runtime) -> int:
    async with runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(MockOutbox)) or 0)


async def sent_attempts(runtime: Runtime) -> dict[str, list[str | None]]:
    """Delivery id → the responses of its attempts that the channel accepted."""
    async with runtime.sessions() as session:
        rows = await session.execute(
            select(DeliveryAttempt.delivery_id, DeliveryAttempt.response).where(
                DeliveryAttempt.outcome == "sent"
            )
        )
        found: dict[str, list[str | None]] = {}
        for delivery_id, response in rows:
            found.setdefault(delivery_id, []).append(response)
        return found


async def test_kill_9_mid_dispatch_then_restart_sends_each_delivery_once(
    accepting_client: httpx.AsyncClient, runtime: Runtime, tmp_path: Path
) -> None:
    for start_at in range(0, DELIVERIES, 1000):
        batch = [
            order_event(f"o-{i}", phone=f"138{i:08d}") for i in range(start_at, start_at + 1000)
        ]
        response = await accepting_client.post(
            "/v1/events", json={"events": batch}, headers=auth(INGEST)
        )
        assert response.status_code == 202
    async with runtime.sessions() as session:
        logged = await session.scalar(select(func.count()).select_from(EventLogEntry))
    assert logged == DELIVERIES  # for `smr serve` to process, and send what they make due
    env = smr_env(
        SMR_DATABASE_URL=runtime.settings.effective_database_url,
        SMR_PLAYBOOKS_DIR=str(CORE),
        SMR_DATA_DIR=str(tmp_path / "data"),
        SMR_ADMIN_TOKENS="a",
        SMR_MOCK__LATENCY_MS="1000",  # one mock call per batch: rows stay in flight a while
        SMR_LEASE_SECONDS="5",
        SMR_TICK_SECONDS="0.2",
        SMR_BATCH_SIZE="100",
    )
    log = tmp_path / "serve.log"

    in_flight = await _kill_mid_send(runtime, env=env, log=log)
    assert in_flight > 0, "the kill should catch deliveries mid-send"
    assert 0 < await outbox_rows(runtime) < DELIVERIES

    second = start(["serve", "--port", "0"], env=env, log=log)
    try:
        await eventually(lambda: _all_sent(runtime), limit=90)
    finally:
        stop(second)

    assert await outbox_rows(runtime) == DELIVERIES
    assert await count(runtime, Delivery.status != "sent") == 0
    # What the kill left in flight was claimed again, once; nothing else was.
    assert await count(runtime, Delivery.attempts == 2) == in_flight
    assert await count(runtime, Delivery.attempts == 1) == DELIVERIES - in_flight
    accepted = await sent_attempts(runtime)
    assert len(accepted) == DELIVERIES
    assert all(len(responses) == 1 for responses in accepted.values())
    resent = [r for (r,) in accepted.values() if r and "deduplicated" in r]
    assert len(resent) <= in_flight


async def _kill_mid_send(runtime: Runtime, *, env: dict[str, str], log: Path) -> int:
    """Start `smr serve` and SIGKILL it while deliveries are claimed and unrecorded; returns how
    many it left in flight. A kill that lands in the instant between one batch's bookkeeping
    and the next claim left none: then the service is started and killed again."""
    for _ in range(5):
        proc = start(["serve", "--port", "0"], env=env, log=log)
        try:
            await eventually(lambda: _between(runtime, 100, DELIVERIES - 300), limit=60)
        finally:
            stop(proc, sig=signal.SIGKILL)
        in_flight = await count(runtime, Delivery.status == "sending")
        if in_flight:
            return in_flight
    return 0


async def _between(runtime: Runtime, low: int, high: int) -> bool:
    """Part-way through, with deliveries claimed and not yet recorded."""
    sending = await count(runtime, Delivery.status == "sending")
    return sending > 0 and low <= await outbox_rows(runtime) <= high


async def _all_sent(runtime: Runtime) -> bool:
    return await count(runtime, Delivery.status == "sent") == DELIVERIES
