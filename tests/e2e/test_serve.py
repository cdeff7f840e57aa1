"""The service as a user runs it: `smr serve` in a subprocess, and the real ticker in-process."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from smr.runtime import Runtime
from smr.scheduler import Ticker
from tests.conftest import CORE
from tests.e2e.processes import eventually, free_port, serving, smr_env, start, stop
from tests.helpers import INGEST, auth, order_event

WAIT_LIMIT = 15.0


async def test_real_ticker_sends_what_ingest_scheduled(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    ticker = Ticker(runtime)
    ticker.start()
    try:
        await client.post("/v1/events", json=order_event("o-1"), headers=auth(INGEST))

        async def outbox() -> list[dict[str, object]] | None:
            items = (await client.get("/v1/mock/outbox", headers=auth())).json()["items"]
            return items or None

        items = await eventually(outbox)
    finally:
        await ticker.stop()
    assert len(items) == 1
    assert str(items[0]["text"]).startswith("小王，感谢您")


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, dict[str, str], Path]]:
    """`smr serve` on a free port with no tokens configured; yields (url, tokens, log file)."""
    port = free_port()
    env = smr_env(SMR_DATA_DIR=str(tmp_path / "data"), SMR_PLAYBOOKS_DIR=str(CORE))
    log = tmp_path / "serve.log"
    proc = start(["serve", "--port", str(port)], env=env, log=log)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as c:
            await serving(c, proc, log)
        tokens = json.loads((tmp_path / "data" / "tokens.json").read_text())
        yield url, tokens, log
    finally:
        stop(proc)


async def test_smr_serve_end_to_end(served: tuple[str, dict[str, str], Path]) -> None:
    url, tokens, log = served
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    async with httpx.AsyncClient(base_url=url) as c:
        accepted = await c.post(
            "/v1/events",
            json=order_event("o-1"),
            headers={"Authorization": f"Bearer {tokens['ingest']}"},
        )
        assert accepted.status_code == 202

        async def outbox() -> list[dict[str, object]] | None:
            return (await c.get("/v1/mock/outbox", headers=admin)).json()["items"] or None

        items = await eventually(outbox, limit=2.0)
        event = (await c.get(f"/v1/events/{accepted.json()['event_id']}", headers=admin)).json()

    assert len(items) == 1
    assert event["evaluations"][0]["outcome"] == "started"
    printed = log.read_text()
    assert f"SMR listening on {url}" in printed
    assert tokens["admin"] in printed
    assert tokens["ingest"] in printed
    assert "wecom → mock" in printed
