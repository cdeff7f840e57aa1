"""`smr worker --health-port` as a process manager runs it: /healthz answers once the worker
ticks, /metrics shows its ticks, and SIGTERM stops it cleanly."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx

from smr.runtime import Runtime
from tests.conftest import CORE
from tests.e2e.processes import eventually, free_port, smr_env, start, stop


async def test_smr_worker_serves_its_health_and_metrics(runtime: Runtime, tmp_path: Path) -> None:
    port = free_port()
    env = smr_env(
        SMR_DATABASE_URL=runtime.settings.effective_database_url,
        SMR_PLAYBOOKS_DIR=str(CORE),
        SMR_DATA_DIR=str(tmp_path / "data"),
        SMR_TICK_SECONDS="0.2",
        SMR_WORKER_HEALTH_HOST="127.0.0.1",
    )
    log = tmp_path / "worker.log"
    proc = start(["worker", "--health-port", str(port)], env=env, log=log)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:

            async def ticked() -> httpx.Response | None:
                if proc.poll() is not None:
                    raise AssertionError(log.read_text())
                try:
                    response = await c.get("/healthz")
                except httpx.TransportError:
                    return None
                return response if response.json()["last_tick_ok"] else None

            health = await eventually(ticked)
            metrics = await c.get("/metrics")
    finally:
        stop(proc)

    assert health.status_code == 200
    assert metrics.status_code == 200
    assert 'smr_ticks_total{outcome="ok"}' in metrics.text
    # uvicorn shuts down (the ticker stopped, the runtime closed), then raises the signal again
    assert proc.returncode == -signal.SIGTERM, log.read_text()
    assert "Application shutdown complete." in log.read_text()
