"""A steady feed of rows that are due now, inserted with COPY on a thread of its own.

The feed has its own thread, event loop and connection, so its inserts neither wait for nor
delay the work being measured on the main event loop. Each batch is stamped with the time it
is inserted (``due_at`` / ``wake_at`` = now), every ``tick`` seconds on a fixed schedule.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from bench.scale_common import PLAYBOOK_ID, PLAYBOOK_VERSION
from bench.scale_seed import DELIVERY_COLUMNS, EMPTY, RUN_COLUMNS, contact_id, run_id
from smr.ids import new_id

TICK_S = 0.1


def due_step(phase: int, cycle: int) -> str:
    """The step name of due deliveries a phase adds (one per seeded run and cycle: the unique
    (run, step) key holds however many a phase inserts)."""
    return f"due[{phase}.{cycle}]"


@dataclass
class DueFeed:
    """Insert ``per_s`` due deliveries (and as many due runs, if ``runs``) per second, in
    batches every ``tick`` seconds, for ``seconds``. Deliveries belong to seeded runs."""

    dsn: str
    per_s: int
    seconds: float
    seeded: int
    phase: int
    runs: bool = False
    tick: float = TICK_S
    deliveries_inserted: int = 0
    runs_inserted: int = 0
    max_behind_s: float = 0.0
    finished: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _error: BaseException | None = None
    _serial: int = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"due-feed-{self.phase}")
        self._thread.start()

    def stop(self) -> None:
        """Stop early (if still running) and wait; re-raises what failed on the thread."""
        self._stop.set()
        self.join()

    def join(self) -> None:
        """Wait until every batch is in; re-raises what failed on the thread."""
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            asyncio.run(self._feed())
        except BaseException as exc:  # handed to the main thread by stop()
            self._error = exc
        finally:
            self.finished.set()

    async def _feed(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            per_batch = max(1, round(self.per_s * self.tick))
            total = max(1, round(self.seconds / self.tick))
            start = time.perf_counter()
            for k in range(total):
                delay = start + k * self.tick - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    self.max_behind_s = max(self.max_behind_s, -delay)
                if self._stop.is_set():
                    break
                await self._insert(conn, per_batch)
        finally:
            await conn.close()

    async def _insert(self, conn: Any, count: int) -> None:
        now = datetime.now(UTC)
        ordinals = range(self._serial, self._serial + count)
        self._serial += count
        async with conn.transaction():
            deliveries = [self._delivery(n, now) for n in ordinals]
            await conn.copy_records_to_table(
                "deliveries", records=deliveries, columns=DELIVERY_COLUMNS
            )
            if self.runs:
                runs = [self._run_row(n, now) for n in ordinals]
                await conn.copy_records_to_table("runs", records=runs, columns=RUN_COLUMNS)
        self.deliveries_inserted += count
        self.runs_inserted += count if self.runs else 0

    def _delivery(self, n: int, now: datetime) -> tuple[Any, ...]:
        seeded = n % self.seeded
        return (
            new_id("dl", now),
            run_id(seeded),
            contact_id(seeded),
            PLAYBOOK_ID,
            due_step(self.phase, n // self.seeded),
            "mock",
            "marketing",
            f"客户{seeded:07d}，今天是会员日，全场会员价：https://example.com",
            EMPTY,
            "scheduled",
            now,
            0,
            now,
            now,
        )

    def _run_row(self, n: int, now: datetime) -> tuple[Any, ...]:
        cid = contact_id(n % self.seeded)
        return (new_id("run", now), cid, PLAYBOOK_ID, PLAYBOOK_VERSION, "waiting", 1, now, now, now)
