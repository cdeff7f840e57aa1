"""Shared fixtures: a real database built by the migrations (SQLite always, PostgreSQL when
SMR_TEST_DATABASE_URL is set), a runtime with a controllable clock, and an ASGI client."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from smr.api.app import create_app
from smr.config import Settings
from smr.migrations import upgrade
from smr.runtime import Runtime, build_runtime
from tests.helpers import ADMIN, INGEST, FakeClock, keeping_up

PG_URL = os.environ.get("SMR_TEST_DATABASE_URL")
IN_CI = os.environ.get("CI") == "true"
BUNDLED = Path(__file__).resolve().parent.parent / "playbooks"
#: The playbooks the pipeline tests run against: a fixed set, so the bundled library can grow.
CORE = Path(__file__).resolve().parent / "fixtures" / "playbooks"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    outcome: Any = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and item.get_closest_marker("postgres"):
        report.outcome = "failed"
        report.longrepr = "a PostgreSQL test was skipped under CI=true"


async def _reset_postgres(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


@pytest.fixture
async def postgres_url() -> str:
    """A fresh PostgreSQL database at the newest migration (skipped without one)."""
    if not PG_URL:
        pytest.skip("SMR_TEST_DATABASE_URL is not set")
    await _reset_postgres(PG_URL)
    await _upgrade(PG_URL)
    return PG_URL


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database at the newest migration."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'smr.db'}"
    elif PG_URL:
        url = PG_URL
        await _reset_postgres(url)
    else:
        pytest.skip("SMR_TEST_DATABASE_URL is not set")
    await _upgrade(url)
    return url


async def _upgrade(url: str) -> None:
    import asyncio

    await asyncio.to_thread(upgrade, url)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 23, 3, 0, tzinfo=UTC))  # 11:00 in Asia/Shanghai


@pytest.fixture
def playbooks_dir() -> Path:
    return CORE


def make_settings(database_url: str, playbooks_dir: Path, data_dir: Path, **extra: Any) -> Settings:
    return Settings(
        database_url=database_url,
        playbooks_dir=playbooks_dir,
        data_dir=data_dir,
        admin_tokens=[SecretStr(ADMIN)],
        ingest_tokens=[SecretStr(INGEST)],
        **extra,
    )


@pytest.fixture
async def runtime(
    database_url: str, playbooks_dir: Path, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Runtime]:
    settings = make_settings(database_url, playbooks_dir, tmp_path / "data")
    rt = build_runtime(settings, clock=clock)
    yield rt
    await rt.aclose()


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The API, with a processor that keeps up (``keeping_up``)."""
    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://smr.test", event_hooks=keeping_up(runtime)
    ) as c:
        yield c


@pytest.fixture
async def accepting_client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The API alone: accepted events wait in the log until the test processes them."""
    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://smr.test") as c:
        yield c
