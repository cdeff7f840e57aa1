"""GET /metrics: Prometheus text read from the database, so every process's work shows."""

from __future__ import annotations

import re

import httpx

from smr.runtime import Runtime
from tests.helpers import INGEST, FakeClock, auth, order_event

SAMPLE = re.compile(r'^[a-z_]+(\{([a-z_]+="[^"]*",?)*\})? -?[0-9.e+]+$')


async def scrape(client: httpx.AsyncClient) -> dict[str, float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for line in response.text.splitlines():
        if line.startswith("#"):
            continue
        assert SAMPLE.match(line), line
        name, value = line.rsplit(" ", 1)
        samples[name] = float(value)
    return samples


async def test_metrics_count_rows_by_status_and_how_late_the_oldest_due_row_is(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    await client.post("/v1/events", json=order_event("o-1"), headers=auth(INGEST))
    clock.advance(seconds=30)

    before = await scrape(client)

    assert before['smr_deliveries{status="scheduled"}'] == 1
    assert before['smr_runs{status="completed"}'] == 1
    assert before['smr_due_age_seconds{kind="deliveries"}'] == 30
    assert before['smr_due_age_seconds{kind="runs"}'] == 0
    assert before["smr_playbooks_loaded"] == 3
    assert before['smr_playbook_problems{severity="error"}'] == 0

    await runtime.dispatcher.tick()
    after = await scrape(client)

    assert after['smr_deliveries{status="sent"}'] == 1
    assert after['smr_deliveries{status="scheduled"}'] == 0
    assert after['smr_due_age_seconds{kind="deliveries"}'] == 0


async def test_metrics_need_no_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")

    assert response.status_code == 200
    assert "# TYPE smr_deliveries gauge" in response.text
