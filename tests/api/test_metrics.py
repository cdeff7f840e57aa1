"""GET /metrics: Prometheus text read from the database, so every process's work shows."""

from __future__ import annotations

import re

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncSession

from smr.channels import RetriableSendError
from smr.repositories import metrics as metrics_repo
from smr.runtime import Runtime
from tests.helpers import INGEST, FakeClock, auth, order_event
from tests.integration.test_dispatch import ScriptedAdapter, route_all

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
    # Its first try, as the order is processed, fails: due again at once (no jitter drawn).
    route_all(runtime, ScriptedAdapter(RetriableSendError("503")), draw=lambda: 0.0)
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


async def test_large_counts_keep_every_digit(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hand-made renderer printed 1,234,567 as ``1.23457e+06`` (that is, 1,234,570)."""
    real = metrics_repo.by_status

    async def many(session: AsyncSession) -> dict[str, dict[str, int]]:
        counts = await real(session)
        counts["deliveries"]["sent"] = 1_234_567
        counts["runs"]["completed"] = 9_007_199_254_740_991  # 2**53 - 1
        return counts

    monkeypatch.setattr(metrics_repo, "by_status", many)

    samples = await scrape(client)

    assert samples['smr_deliveries{status="sent"}'] == 1_234_567
    assert samples['smr_runs{status="completed"}'] == 9_007_199_254_740_991


async def test_metrics_parse_as_prometheus_text_and_as_openmetrics(
    client: httpx.AsyncClient,
) -> None:
    text = (await client.get("/metrics")).text
    families = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert families["smr_deliveries"] == "gauge"
    assert families["smr_sends"] == "counter"
    assert families["smr_ingest_seconds"] == "histogram"

    openmetrics = await client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.endswith("# EOF\n")


async def test_ingest_claims_vendor_calls_and_sends_are_measured(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await client.post("/v1/events", json=order_event("o-1"), headers=auth(INGEST))
    viewed = {**order_event("v-1"), "type": "page.viewed"}  # starts nothing
    await client.post("/v1/events", json=viewed, headers=auth(INGEST))
    await client.post("/v1/webhooks/generic", content=b"{}")  # not configured: a 404, timed
    await client.get("/v1/events/evt-x", headers=auth())  # a read, not ingest

    await runtime.dispatcher.tick()
    samples = await scrape(client)

    assert samples['smr_ingest_seconds_count{endpoint="events"}'] == 2
    assert samples['smr_ingest_seconds_count{endpoint="webhooks"}'] == 1
    assert samples['smr_ingest_seconds_sum{endpoint="events"}'] > 0
    assert samples['smr_ingest_seconds_bucket{endpoint="events",le="+Inf"}'] == 2
    # the processor looks for due runs after each batch of events (the hook's drains)
    assert samples['smr_claim_seconds_count{kind="runs"}'] > 0
    assert samples['smr_claim_seconds_sum{kind="runs"}'] > 0
    lanes = runtime.settings.dispatch_lanes
    assert samples['smr_claim_seconds_count{kind="deliveries"}'] == lanes
    assert samples['smr_vendor_call_seconds_count{channel="wecom"}'] == 1
    assert samples['smr_sends_total{channel="wecom",outcome="sent"}'] == 1
