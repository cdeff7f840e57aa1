"""APScheduler 3 as a ticker only: it calls the dispatcher; the rows hold all the state."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from smr.backoff import Backoff
from smr.db import describe, is_unavailable
from smr.runtime import Runtime

log = logging.getLogger(__name__)
DISPATCH_JOB = "dispatch"


class Ticker:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._ticking = asyncio.Lock()
        #: The waits between ticks while the database cannot be reached.
        self.backoff = Backoff(first=1.0, cap=30.0)
        # A line per tick is noise; the run log and our own logs say what each tick did.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)

    def start(self) -> None:
        self._scheduler.add_job(
            self._dispatch,
            "interval",
            seconds=self._runtime.settings.tick_seconds,
            id=DISPATCH_JOB,
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC),
        )
        self._scheduler.start()
        self._runtime.processor.start()
        self._runtime.telemetry.heartbeat.start(self._runtime.clock())

    async def stop(self) -> None:
        """Stop ticking and wait for a tick in progress to finish, so nothing is cut off
        mid-transaction when the engine closes."""
        self._runtime.telemetry.heartbeat.stop()
        if self._scheduler.running:
            self._scheduler.pause()  # no new tick; the one in progress finishes
        await self._runtime.processor.aclose()
        async with self._ticking:
            if self._scheduler.running:
                self._scheduler.shutdown(wait=False)

    async def _dispatch(self) -> None:
        async with self._ticking:
            try:
                await self._runtime.tick()
            except Exception as exc:  # a failed tick must not stop the ticker; rows stay claimable
                if not is_unavailable(exc):
                    log.exception("dispatch tick failed")
                    return
                self._back_off(exc)
                return
        if failures := self.backoff.succeeded():
            log.warning("database reachable again after %d failed ticks; ticking resumed", failures)

    def _back_off(self, exc: Exception) -> None:
        """The database is gone: tick again after a growing wait, not at every interval."""
        delay = self.backoff.failed()
        if self.backoff.failures == 1:
            log.warning(
                "database unavailable (%s); ticks back off up to %gs apart until it answers",
                describe(exc),
                self.backoff.cap,
            )
        job = self._scheduler.get_job(DISPATCH_JOB)
        if job is not None:
            job.modify(next_run_time=datetime.now(UTC) + timedelta(seconds=delay))
