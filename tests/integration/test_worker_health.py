"""A worker's /healthz and /metrics, with the real ticker on a real database: 200 while ticks
finish, 503 when the ticker stops or a tick hangs, and the worker's own measurements."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from smr.runtime import Runtime
from smr.scheduler import Ticker
from smr.worker import health_app
from tests.e2e.processes import eventually
from tests.helpers import INGEST, FakeClock, auth, order_event


@pytest.fixture
async def probe(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The worker's health server, without its lifespan: the tests drive the ticker."""
    transport = httpx.ASGITransport(app=health_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://worker.test") as c:
        yield c


async def ticked(probe: httpx.AsyncClient) -> httpx.Response | None:
    """The answer once a tick has finished since the ticker started (before, it is 200 too)."""
    response = await probe.get("/healthz")
    return response if response.json()["last_tick_ok"] is not None else None


async def test_healthy_while_ticking_and_not_once_the_ticker_stops(
    probe: httpx.AsyncClient, runtime: Runtime
) -> None:
    assert (await probe.get("/healthz")).status_code == 503  # no ticker yet
    ticker = Ticker(runtime)
    ticker.start()
    try:
        ok = await eventually(lambda: ticked(probe))
        assert ok.status_code == 200
        assert ok.json() == {"status": "ok", "seconds_since_tick": 0, "last_tick_ok": True}
    finally:
        await ticker.stop()

    stopped = await probe.get("/healthz")
    assert stopped.status_code == 503
    assert stopped.headers["content-type"] == "application/problem+json"
    assert stopped.json()["detail"] == "the ticker is not running"


async def test_a_hung_tick_makes_the_worker_unhealthy_until_it_finishes(
    probe: httpx.AsyncClient, runtime: Runtime, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    async def hang(**_: object) -> int:
        entered.set()
        await release.wait()
        return 0

    monkeypatch.setattr(runtime.dispatcher, "tick", hang)
    ticker = Ticker(runtime)
    ticker.start()
    try:
        await asyncio.wait_for(entered.wait(), 15)
        assert (await probe.get("/healthz")).status_code == 200  # started just now

        clock.advance(seconds=runtime.settings.worker_health_stale_seconds + 1)
        hung = await probe.get("/healthz")
        assert hung.status_code == 503
        assert hung.json()["detail"] == "no tick has finished 301 s ago (limit 300 s)"

        release.set()
        recovered = await eventually(lambda: ticked(probe))
        assert recovered.status_code == 200
        assert recovered.json()["seconds_since_tick"] == 0
    finally:
        release.set()
        await ticker.stop()


async def test_the_worker_metrics_show_its_ticks_claims_and_sends(
    probe: httpx.AsyncClient, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await client.post("/v1/events", json=order_event("o-1"), headers=auth(INGEST))
    ticker = Ticker(runtime)
    ticker.start()

    async def sent() -> str | None:
        """The metrics once the tick that sent the delivery has finished."""
        text = (await probe.get("/metrics")).text
        done = 'smr_sends_total{channel="wecom",outcome="sent"} 1.0' in text
        return text if done and 'smr_ticks_total{outcome="ok"}' in text else None

    try:
        text = await eventually(sent)
    finally:
        await ticker.stop()
    assert 'smr_claim_seconds_count{kind="deliveries"}' in text
    assert 'smr_vendor_call_seconds_count{channel="wecom"} 1.0' in text
    assert "smr_deliveries" not in text  # the database's counts are the API's to report
