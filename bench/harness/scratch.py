"""An SMR runtime on a bench database, over a scratch playbooks folder."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory

from bench.harness.db import create_database, database_dsn, sqlalchemy_url
from smr.config import Settings
from smr.migrations import upgrade
from smr.runtime import Runtime, build_runtime

POLICIES = "timezone: Asia/Shanghai\n"


def migrated_database(pg: str, database: str) -> tuple[str, str]:
    """Recreate ``database`` at the newest migration; the server's version and the URL."""
    version = asyncio.run(create_database(pg, database))
    url = sqlalchemy_url(database_dsn(pg, database))
    upgrade(url)
    return version, url


@contextlib.asynccontextmanager
async def scratch_runtime(url: str, files: Mapping[str, str] = {}) -> AsyncIterator[Runtime]:
    """A runtime (wall clock) whose playbooks folder holds ``policies.yaml`` and ``files``
    (path → text, e.g. ``segments/diamond.yaml``)."""
    with TemporaryDirectory() as folder:
        playbooks = Path(folder)
        (playbooks / "policies.yaml").write_text(POLICIES, encoding="utf-8")
        for name, text in files.items():
            (playbooks / name).parent.mkdir(parents=True, exist_ok=True)
            (playbooks / name).write_text(text, encoding="utf-8")
        settings = Settings(database_url=url, playbooks_dir=playbooks, data_dir=playbooks / "data")
        runtime = build_runtime(settings, clock=lambda: datetime.now(UTC))
        try:
            yield runtime
        finally:
            await runtime.aclose()
