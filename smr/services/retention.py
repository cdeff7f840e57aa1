"""The retention policy (``SMR_RETENTION__…``): rows older than their table's days are pruned,
so the database does not grow without bound (a nightly playbook over a million customers
writes a million runs' trace a day).

**Every hour** (``tick``, called by every ticking worker): the first tick of each UTC hour to
insert its row in ``periodic_slots`` prunes, in the background: each table with a retention,
oldest rows first, a batch (``batch_size`` rows) per transaction, so no lock is held for long
and the processors' transactions go on between batches. A pass that fails is logged; the next
hour prunes again. A tick never raises.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smr.config import RetentionSettings
from smr.db import unit_of_work
from smr.repositories import retention as repo
from smr.repositories.retention import Aging
from smr.services.passes import Slots, Spawned

log = logging.getLogger(__name__)

SLOT = "retention"


class Pruner:
    """The retention pass of one process."""

    def __init__(
        self,
        settings: RetentionSettings,
        *,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], datetime],
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._clock = clock
        self._slots = Slots(SLOT, sessions=sessions, clock=clock)
        self._tasks = Spawned()
        days = [
            (repo.EVENTS, settings.events_days),
            (repo.TRACE, settings.trace_days),
            (repo.ATTEMPTS, settings.attempts_days),
            (repo.OUTBOX, settings.outbox_days),
        ]
        #: The tables with a retention, and how long they keep a row.
        self.kept = [(aging, timedelta(days=d)) for aging, d in days if d is not None]

    async def tick(self) -> None:
        """Start this hour's pass if no worker has yet (never raises)."""
        if not self.kept:
            return
        now = self._clock().astimezone(UTC)
        slot = now.replace(minute=0, second=0, microsecond=0)
        if await self._slots.take(slot):
            pruned = self._slots.run(slot, self.prune, name="retention pass")
            self._tasks.spawn(pruned, f"retention-{slot:%Y%m%d%H}")

    async def prune(self) -> dict[str, int]:
        """Prune every table with a retention, to the end; rows deleted per table. Raises a
        database error when it cannot go on (what was deleted stays deleted)."""
        now = self._clock()
        pruned = {a.name: await self._prune(a, before=now - days) for a, days in self.kept}
        log.info("retention: rows pruned: %s", pruned)
        return pruned

    async def _prune(self, aging: Aging, *, before: datetime) -> int:
        async with unit_of_work(self._sessions) as session:
            below = await repo.first_kept(session, aging, before=before)
        total, limit = 0, self._settings.batch_size
        while True:
            async with unit_of_work(self._sessions) as session:
                done = await repo.prune(session, aging, below=below, before=before, limit=limit)
            total += done
            if done < limit:
                return total

    async def settle(self) -> None:
        await self._tasks.settle()

    async def aclose(self) -> None:
        await self._tasks.cancel()
