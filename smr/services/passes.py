"""Work done in the background, never in the way of a request, a reload or a tick: passes run
one at a time (the channel codes and group welcome templates SMR keeps in WeCom), and tasks
spawned and held until they end (group fetches, Moments polls), and periodic jobs that run
once per slot however many workers tick (the daily group sync, the Moments poll)."""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smr.db import log_failure, unit_of_work
from smr.repositories import periodic_slots

Clock = Callable[[], datetime]

log = logging.getLogger(__name__)


class Passes:
    """Runs ``work(force)`` in the background, one pass at a time.

    ``kick`` asks for a pass now that also retries what failed (start, reload); ``tick`` for a
    pass when the time a pass asked for with ``due`` has come. A request while a pass runs
    makes one more after it. A pass that raises (the database, most likely) is logged and
    tried again ``retry`` later.
    """

    def __init__(
        self,
        work: Callable[[bool], Awaitable[object]],
        *,
        name: str,
        clock: Callable[[], datetime],
        retry: timedelta,
    ) -> None:
        self._work = work
        self._name = name
        self._clock = clock
        self._retry = retry
        self._due_at: datetime | None = None
        self._force = self._again = False
        self._task: asyncio.Task[None] | None = None

    def kick(self) -> None:
        self._force = True
        self._due_at = self._clock()
        self._start()

    def tick(self) -> None:
        if self._due_at is not None and self._clock() >= self._due_at:
            self._start()

    def clear(self) -> None:
        """Nothing is due (a pass starting calls it, then ``due`` for what it left)."""
        self._due_at = None

    def due(self, at: datetime) -> None:
        """Run a pass at ``at`` at the latest."""
        self._due_at = at if self._due_at is None else min(self._due_at, at)

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=self._name)
        else:
            self._again = True

    async def _run(self) -> None:
        again = True
        while again:
            self._again, force, self._force = False, self._force, False
            try:
                await self._work(force)
            except Exception as exc:
                log_failure(log, self._name, exc)
                self.due(self._clock() + self._retry)
            again = self._again

    async def settle(self) -> None:
        """Wait for the pass running, if any."""
        while self._task is not None and not self._task.done():
            await asyncio.gather(self._task, return_exceptions=True)


class Spawned:
    """Tasks started in the background (a group fetch, a Moments poll), held until they end so
    none is dropped half-way, to wait for (``settle``) or cancel (``cancel``) at shutdown."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle(self) -> None:
        while self._tasks:
            await asyncio.gather(*self._tasks)

    async def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class Slots:
    """The slots of a periodic job (``periodic_slots``): whichever worker takes a slot first runs
    it. Each process asks about a slot once (``take``), unless it gave the slot back."""

    def __init__(
        self, name: str, *, sessions: async_sessionmaker[AsyncSession], clock: Clock
    ) -> None:
        self._name = name
        self._sessions = sessions
        self._clock = clock
        self._seen: datetime | None = None

    async def take(self, slot: datetime) -> bool:
        """True when this process took ``slot`` and so runs it; False when another worker did,
        when this process asked already, or when the database could not say (the next tick
        asks again)."""
        if slot == self._seen:
            return False
        try:
            async with unit_of_work(self._sessions) as session:
                won = await periodic_slots.take(session, self._name, slot, now=self._clock())
        except Exception as exc:
            log_failure(log, f"{self._name} slot", exc)
            return False
        self._seen = slot
        return won

    async def run(
        self, slot: datetime, work: Callable[[], Awaitable[object]], *, name: str
    ) -> None:
        """Run ``work`` for ``slot`` (taken). A failure is logged: the next slot runs again. A
        cancellation (shutting down) gives the slot back, for another worker to run it."""
        try:
            await work()
        except asyncio.CancelledError:
            await asyncio.shield(self.give_back(slot))
            raise
        except Exception as exc:
            log_failure(log, name, exc)

    async def give_back(self, slot: datetime) -> None:
        """Release a slot whose run did not finish, so a later tick (of any worker) runs it."""
        self._seen = None
        try:
            async with unit_of_work(self._sessions) as session:
                await periodic_slots.give_back(session, self._name, slot)
        except Exception as exc:  # the slot stays taken: the next slot catches up
            log_failure(log, f"giving back the {self._name} slot", exc)


class Keeper(ABC):
    """Something SMR keeps in step with a vendor in passes (``sync``), in the background: on
    start and reload (``kick``, retrying what failed at once) and when a retry is due
    (``tick``)."""

    def __init__(self, *, name: str, clock: Clock, retry: timedelta) -> None:
        self._passes = Passes(
            lambda force: self.sync(force=force), name=name, clock=clock, retry=retry
        )

    @abstractmethod
    async def sync(self, *, force: bool = True) -> object:
        """One pass; with ``force``, what failed is retried before its retry time."""

    def kick(self) -> None:
        self._passes.kick()

    def tick(self) -> None:
        self._passes.tick()

    async def settle(self) -> None:
        """Wait for the pass running in the background, if any."""
        await self._passes.settle()
