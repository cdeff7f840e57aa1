"""A database that cannot be reached (a real refused connection, not a mock): the API answers
503 with Retry-After and is not ready; the ticker backs off with one warning, not a traceback
per tick."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi

from smr.api.app import create_app
from smr.backoff import Backoff
from smr.runtime import Runtime, build_runtime
from smr.scheduler import Ticker
from tests.conftest import CORE, make_settings
from tests.e2e.processes import eventually, free_port
from tests.helpers import ADMIN, INGEST, auth, order_event


@pytest.fixture
async def gone(tmp_path: Path) -> AsyncIterator[Runtime]:
    """A runtime whose PostgreSQL refuses connections: nothing listens on its port."""
    url = f"postgresql+asyncpg://smr@127.0.0.1:{free_port()}/smr"
    settings = make_settings(url, CORE, tmp_path / "data", tick_seconds=0.05)
    runtime = build_runtime(settings)
    yield runtime
    await runtime.aclose()


@pytest.fixture
async def gone_client(gone: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(gone))
    async with httpx.AsyncClient(transport=transport, base_url="http://smr.test") as client:
        yield client


@pytest.mark.parametrize(
    ("method", "path", "token", "body"),
    [
        ("POST", "/v1/events", INGEST, order_event("o-1")),
        ("POST", "/v1/events", INGEST, {"events": [order_event("o-1"), order_event("o-2")]}),
        ("GET", "/v1/runs", ADMIN, None),
        ("GET", "/v1/contacts?phone=13800000000", ADMIN, None),
    ],
)
async def test_requests_answer_503_with_retry_after(
    gone_client: httpx.AsyncClient,
    method: str,
    path: str,
    token: str,
    body: object,
    caplog: pytest.LogCaptureFixture,
) -> None:
    response = await gone_client.request(method, path, json=body, headers=auth(token))
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    assert response.json()["title"] == "Service unavailable"
    # One line in the log, not a traceback per request.
    assert not [r for r in caplog.records if r.exc_info]
    assert any("database unavailable" in r.getMessage() for r in caplog.records)


def _closed_in_the_adapter() -> Exception:
    """What SQLAlchemy's asyncpg adapter raises on a connection that closed, should it escape
    unwrapped: the adapter's error, caused by asyncpg's."""
    try:
        try:
            raise asyncpg.InterfaceError("connection is closed")
        except asyncpg.InterfaceError as exc:
            closed = AsyncAdapt_asyncpg_dbapi.InterfaceError("connection is closed")  # type: ignore[no-untyped-call]
            raise closed from exc
    except AsyncAdapt_asyncpg_dbapi.InterfaceError as exc:
        return exc


@pytest.mark.parametrize(
    "error",
    [_closed_in_the_adapter(), asyncpg.InterfaceError("connection is closed")],
    ids=["adapter", "asyncpg"],
)
async def test_driver_errors_answer_503_too(
    gone: Runtime,
    gone_client: httpx.AsyncClient,
    error: Exception,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def closed(*_args: object, **_kwargs: object) -> None:
        raise error

    monkeypatch.setattr(gone, "ingest", closed)
    response = await gone_client.post("/v1/events", json=order_event("o-1"), headers=auth(INGEST))
    assert response.status_code == 503
    assert response.headers["retry-after"]


async def test_readyz_is_not_ready(gone_client: httpx.AsyncClient) -> None:
    assert (await gone_client.get("/healthz")).status_code == 200
    response = await gone_client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"


async def test_ticker_backs_off_with_one_warning(
    gone: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="smr")
    ticker = Ticker(gone)
    ticker.backoff = Backoff(first=0.2, cap=0.4)
    loop = asyncio.get_running_loop()
    started = loop.time()
    ticker.start()
    try:
        await eventually(lambda: asyncio.sleep(0, ticker.backoff.failures >= 3))
    finally:
        await ticker.stop()
    # Ticking every 0.05 s, three failures would take 0.1 s; backing off, the second tick
    # waits at least 0.1 s and the third at least 0.2 s more.
    assert loop.time() - started >= 0.3
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage().split(" (")[0] for r in warnings] == ["database unavailable"]
    assert not [r for r in caplog.records if r.exc_info]
