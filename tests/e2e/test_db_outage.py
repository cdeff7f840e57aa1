"""The database goes away while events arrive and deliveries are due, then comes back.

`smr api` and `smr worker` reach a real PostgreSQL through a TCP proxy the test cuts (every
connection dropped, new ones refused, as while PostgreSQL restarts). While it is cut, ingest
answers 503 with Retry-After (never 500) and /readyz is not ready; the worker logs one warning
and backs off. When it is back, without a restart, ingest answers 202 again, the worker resumes,
and every accepted event is processed and every delivery sent exactly once.

The cut lasts a few seconds here; the issue's 30 s outage is the README's manual check."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from smr.models import Delivery, DeliveryAttempt, Event, MockOutbox
from smr.runtime import Runtime
from tests.conftest import CORE
from tests.e2e.processes import eventually, free_port, serving, smr_env, start, stop
from tests.e2e.proxy import CuttableProxy
from tests.helpers import ADMIN, INGEST, auth, order_event

pytestmark = pytest.mark.postgres
BATCH = 60  # events per batch; each one delivery (order-thank-you)
OUTAGE_SECONDS = 3.0


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(postgres_url: str) -> str:
    return postgres_url


@pytest.fixture
async def proxy(database_url: str) -> AsyncIterator[CuttableProxy]:
    url = make_url(database_url)
    cuttable = CuttableProxy(url.host or "127.0.0.1", url.port or 5432)
    await cuttable.start()
    yield cuttable
    await cuttable.aclose()


def batch(prefix: str) -> dict[str, Any]:
    return {"events": [order_event(f"{prefix}-{i}", phone=f"139{i:08d}") for i in range(BATCH)]}


async def scalar(runtime: Runtime, stmt: Any) -> int:
    async with runtime.sessions() as session:
        return int(await session.scalar(stmt) or 0)


async def test_database_outage_then_recovery_loses_nothing_and_sends_nothing_twice(
    runtime: Runtime, proxy: CuttableProxy, tmp_path: Path
) -> None:
    proxied = make_url(runtime.settings.effective_database_url).set(
        host="127.0.0.1", port=proxy.port
    )
    env = smr_env(
        SMR_DATABASE_URL=proxied.render_as_string(hide_password=False),
        SMR_PLAYBOOKS_DIR=str(CORE),
        SMR_DATA_DIR=str(tmp_path / "data"),
        SMR_ADMIN_TOKENS=ADMIN,
        SMR_INGEST_TOKENS=INGEST,
        SMR_TICK_SECONDS="0.2",
        SMR_LEASE_SECONDS="5",
        SMR_BATCH_SIZE="5",
        SMR_INGEST__BATCH_SIZE="5",  # the processor sends what each batch of 5 made due
        SMR_MOCK__LATENCY_MS="300",  # one "vendor call" per batch: rows stay in flight a while
    )
    port = free_port()
    api_log, worker_log = tmp_path / "api.log", tmp_path / "worker.log"
    api = start(["api", "--port", str(port)], env=env, log=api_log)
    worker = start(["worker"], env=env, log=worker_log)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            await serving(client, api, api_log)
            await _outage_and_recovery(client, runtime, proxy, worker=worker, log=worker_log)
            assert api.poll() is None, "the API kept running"
            assert worker.poll() is None, "the worker kept running"
    finally:
        stop(api)
        stop(worker)

    total = 3 * BATCH
    assert await scalar(runtime, select(func.count()).select_from(Event)) == total
    assert await scalar(runtime, select(func.count()).select_from(MockOutbox)) == total
    sent = select(DeliveryAttempt.delivery_id).where(DeliveryAttempt.outcome == "sent")
    twice = sent.group_by(DeliveryAttempt.delivery_id).having(func.count() > 1).subquery()
    assert await scalar(runtime, select(func.count()).select_from(twice)) == 0
    api_text, worker_text = api_log.read_text(), worker_log.read_text()
    assert "unhandled error" not in api_text
    assert "dispatch tick failed" not in worker_text
    assert worker_text.count("database unavailable") == 1, worker_text
    assert worker_text.count("ticking resumed") == 1, worker_text


async def _outage_and_recovery(
    client: httpx.AsyncClient,
    runtime: Runtime,
    proxy: CuttableProxy,
    *,
    worker: subprocess.Popen[bytes],
    log: Path,
) -> None:
    before = await client.post("/v1/events", json=batch("before"), headers=auth(INGEST))
    assert before.status_code == 202
    # Cut while the worker is part-way through sending them.
    await eventually(lambda: _outbox_between(runtime, 1, BATCH - 1))
    await proxy.cut()

    loop = asyncio.get_running_loop()
    cut_at, answers = loop.time(), 0
    while loop.time() - cut_at < OUTAGE_SECONDS or not _says(log, "database unavailable"):
        during = await client.post("/v1/events", json=batch("during"), headers=auth(INGEST))
        assert during.status_code == 503, during.text
        assert during.headers["content-type"] == "application/problem+json"
        assert int(during.headers["retry-after"]) > 0
        assert (await client.get("/readyz")).status_code == 503
        answers += 1
        await asyncio.sleep(0.2)  # a client's pace; the outage lasts OUTAGE_SECONDS
    assert answers >= 5
    assert worker.poll() is None, "the worker kept running"

    await proxy.restore()
    # The shop retries what was refused: nothing of it was stored, so all of it is accepted.
    retried = await eventually(lambda: _post_until_accepted(client, batch("during")), limit=30)
    assert [r["status"] for r in retried["results"]] == ["accepted"] * BATCH
    after = await client.post("/v1/events", json=batch("after"), headers=auth(INGEST))
    assert after.status_code == 202
    assert (await client.get("/readyz")).status_code == 200

    await eventually(lambda: _all_sent(runtime, 3 * BATCH), limit=60)


def _says(log: Path, text: str) -> bool:
    return text in log.read_text()


async def _post_until_accepted(client: httpx.AsyncClient, body: Any) -> Any:
    response = await client.post("/v1/events", json=body, headers=auth(INGEST))
    if response.status_code == 503:
        return None
    assert response.status_code == 202, response.text
    return response.json()


async def _outbox_between(runtime: Runtime, low: int, high: int) -> bool:
    return low <= await scalar(runtime, select(func.count()).select_from(MockOutbox)) <= high


async def _all_sent(runtime: Runtime, total: int) -> bool:
    stmt = select(func.count()).select_from(Delivery).where(Delivery.status == "sent")
    return await scalar(runtime, stmt) == total
