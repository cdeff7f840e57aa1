"""The processor: takes events from the log, in order per contact, and processes them; and
advances the due runs of the same contacts.

One per ``smr serve`` and ``smr worker``. It owns a share of the log's partitions
(``PartitionOwner``) and works in batches, each one transaction: renew the leases (the
fence), take the next events of the partitions still held, process them
(``processing.process``), commit; then likewise the due runs of the contacts of those
partitions (``wakeups.Waker``). The deliveries a batch made due at once are written claimed,
and the processor has the dispatcher send them right after the commit, before its next batch:
no claim, no wait for a tick (a welcome goes out within WeCom's 20 s). In the background it
works in ``lanes``, each over a fixed part of the partitions (partition number modulo the
lanes) with its own transactions, so that one lane plans a batch in Python while another's is
written by the database; a partition is in one lane, so a contact's events and runs still go
one batch at a time, events in order. A lane works while there is work, then waits for a
local accept or a tick (``kick``) or the poll interval, which doubles while nothing comes (up
to a second). A batch of events that raises is taken again one event at a time, and an event
that raises alone is marked ``failed`` with the error, so it never holds back the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smr.backoff import Backoff
from smr.config import IngestSettings
from smr.db import is_transient, is_unavailable, log_failure, unit_of_work
from smr.eventlog import PARTITIONS, EventStatus, LoggedEvent
from smr.repositories import event_log
from smr.services.catalog import Catalog
from smr.services.dispatch import Claimed, Dispatcher
from smr.services.partition_owner import PartitionOwner
from smr.services.processing import Processed, process
from smr.services.wakeups import Fence, Waker
from smr.subjects import IDENTITY_KINDS
from smr.telemetry import Telemetry

log = logging.getLogger(__name__)
#: Tries of a batch that meets a deadlock or a serialization failure.
RETRIES = 5
#: An idle processor looks for events accepted elsewhere at least this often.
IDLE_POLL_CAP_SECONDS = 1.0

T = TypeVar("T")


@dataclass(frozen=True)
class Worked:
    """What a processor did: events processed, runs advanced, and deliveries due at once that
    it had sent (``dispatched``)."""

    events: int = 0
    runs: int = 0
    dispatched: int = 0

    def __add__(self, other: Worked) -> Worked:
        return Worked(
            self.events + other.events,
            self.runs + other.runs,
            self.dispatched + other.dispatched,
        )

    def __bool__(self) -> bool:
        return bool(self.events or self.runs)


class Processor:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        catalog: Catalog,
        settings: IngestSettings,
        clock: Callable[[], datetime],
        telemetry: Telemetry,
        dispatcher: Dispatcher,
        lanes: int = 1,
        merge_by: Collection[str] = IDENTITY_KINDS,
    ) -> None:
        """``merge_by``: the identity kinds that merge contacts (``smr.services.merging``)."""
        self._sessions = sessions
        self._catalog = catalog
        self._settings = settings
        self._clock = clock
        self._telemetry = telemetry
        self._dispatcher = dispatcher
        self._merge_by = frozenset(merge_by)
        self.owner = PartitionOwner(
            sessions, lease=timedelta(seconds=settings.lease_seconds), clock=clock
        )
        self._waker = Waker(
            sessions=sessions,
            catalog=catalog,
            clock=clock,
            batch_size=settings.batch_size,
            dispatcher=dispatcher,
            telemetry=telemetry,
        )
        #: The partitions of each lane (``None``: all of them, when there is one lane).
        self.lanes: list[frozenset[int] | None] = (
            [None]
            if lanes <= 1
            else [frozenset(range(lane, PARTITIONS, lanes)) for lane in range(lanes)]
        )
        self._kicked = [asyncio.Event() for _ in self.lanes]
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False
        #: Held by a batch in progress (one per lane; ``once`` without a lane holds them all).
        self._turns = {lane: asyncio.Lock() for lane in self.lanes}
        self._beat = asyncio.Lock()

    @property
    def in_background(self) -> bool:
        """Whether it was started to work in the background (``start``; true after
        ``aclose`` too: whoever stopped it does not expect events to be processed)."""
        return self._started

    def kick(self) -> None:
        """Events were accepted in this process, or a cron fan-out started runs: look at once."""
        for kicked in self._kicked:
            kicked.set()

    async def drain(self) -> Worked:
        """Process events and advance due runs until the partitions held have none left."""
        total = Worked()
        while made := await self.once():
            total += made
        return total

    async def once(self, lane: frozenset[int] | None = None) -> Worked:
        """One batch of events and one of due runs, of the partitions of ``lane`` (or of all)."""
        async with contextlib.AsyncExitStack() as turns:
            for turn in self._turns.values() if lane is None else [self._turns[lane]]:
                await turns.enter_async_context(turn)
            await self._heartbeat()
            done = await self._events(lane)
            held = [p for p in self.owner.held if lane is None or p in lane]
            woken = await _retried(lambda: self._waker.wake(held, self._fence(lane)))
            dispatched = await self._send([*done.gated, *woken.gated])
        return Worked(done.events, woken.runs, dispatched)

    def _fence(self, lane: frozenset[int] | None) -> Fence:
        return lambda session: self.owner.fence(session, within=lane)

    async def _send(self, gated: list[Claimed]) -> int:
        """Have what the committed batches claimed and gated sent; what cannot be sent or
        recorded now stays claimed until its lease ends, when a dispatcher takes it over."""
        if not gated:
            return 0
        try:
            return await self._dispatcher.send(gated)
        except Exception as exc:
            if not is_unavailable(exc):  # the ticker says when the database is gone, once
                log_failure(log, "sending the deliveries a batch made due", exc)
            return 0

    async def _events(self, lane: frozenset[int] | None) -> Processed:
        try:
            return await _retried(lambda: self._batch(lane))
        except Exception as exc:
            if is_unavailable(exc):
                raise
            log.warning("a batch failed; its events are taken again one at a time")
            return await self._one_at_a_time(lane)

    async def _heartbeat(self) -> None:
        async with self._beat:
            if self.owner.due:  # two processors' heartbeats at once may deadlock: try again
                await _retried(self.owner.heartbeat)

    async def _batch(self, lane: frozenset[int] | None, *, alone: bool = False) -> Processed:
        """A batch, or (``alone``) the oldest event by itself, urgent ones not put first."""
        started = time.perf_counter()
        async with unit_of_work(self._sessions) as session:
            held = await self._fence(lane)(session)
            batch = await event_log.take(
                session,
                partitions=held,
                limit=1 if alone else self._settings.batch_size,
                urgent_first=not alone,
            )
            done = await process(
                session,
                batch,
                catalog=self._catalog,
                now=self._clock(),
                dispatcher=self._dispatcher,
                merge_by=self._merge_by,
            )
        if done.events:
            self._telemetry.batch.observe(time.perf_counter() - started)
            self._telemetry.processed.labels(EventStatus.PROCESSED).inc(done.events)
        return done

    async def _one_at_a_time(self, lane: frozenset[int] | None) -> Processed:
        """The next batch's events one by one; one that fails alone is marked failed."""
        made = Processed()
        for _ in range(self._settings.batch_size):
            if not (alone := await self._alone(lane)).events:
                break
            made += alone
        return made

    async def _alone(self, lane: frozenset[int] | None) -> Processed:
        """The oldest event by itself: processed, or marked failed when it raises (what
        ``_retryable`` says is tried again first)."""
        for attempt in range(1, RETRIES + 1):
            try:
                return await self._batch(lane, alone=True)
            except Exception as exc:
                if is_unavailable(exc):
                    raise
                if not _retryable(exc) or attempt == RETRIES:
                    return await self._fail_next(lane, exc)
        return Processed()

    async def _fail_next(self, lane: frozenset[int] | None, error: Exception) -> Processed:
        async with unit_of_work(self._sessions) as session:
            held = await self._fence(lane)(session)
            batch = await event_log.take(session, partitions=held, limit=1, urgent_first=False)
            await _mark_failed(session, batch, error=error, now=self._clock())
        for event in batch:
            log.error("event %s failed and was set aside", event.id, exc_info=error)
        self._telemetry.processed.labels(EventStatus.FAILED).inc(len(batch))
        return Processed(events=len(batch))

    def start(self) -> None:
        self._started = True
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._work(lane, kicked), name=f"processor lane {index}")
                for index, (lane, kicked) in enumerate(zip(self.lanes, self._kicked, strict=True))
            ]

    async def _work(self, lane: frozenset[int] | None, kicked: asyncio.Event) -> None:
        idle = self._settings.poll_seconds
        outage = Backoff(first=1.0, cap=30.0)
        while True:
            try:
                made = await self.once(lane)
            except Exception as exc:  # the events stay in the log; try again later
                if not is_unavailable(exc):
                    log_failure(log, "event processing", exc)
                    made = Worked()
                else:  # the ticker says so, once, and when it is back
                    await asyncio.sleep(outage.failed())
                    continue
            outage.succeeded()
            if made:
                idle = self._settings.poll_seconds
                continue
            # asyncio.timeout rather than wait_for: on Python 3.11 wait_for loses a cancel
            # that comes as the kick does, and ``aclose`` would wait for the lane for ever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(idle):
                    await kicked.wait()
            if kicked.is_set():
                kicked.clear()
                idle = self._settings.poll_seconds
            else:  # nothing came: look less often, up to once a second
                idle = min(max(self._settings.poll_seconds, IDLE_POLL_CAP_SECONDS), idle * 2)

    async def aclose(self) -> None:
        """Stop after the batches in progress and give the partitions back (also those a
        ``drain`` took), so that another processor need not wait for their leases to end."""
        if not self._tasks and not self.owner.held:
            return
        async with contextlib.AsyncExitStack() as turns:
            for turn in self._turns.values():
                await turns.enter_async_context(turn)
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._tasks = []
        try:
            await self.owner.leave()
        except Exception as exc:  # the leases run out instead (the ticker told of an outage)
            if not is_unavailable(exc):
                log_failure(log, "giving partitions back", exc)


def _retryable(exc: Exception) -> bool:
    """A deadlock, a serialization failure, or entries gone from the log (an erasure)."""
    return is_transient(exc) or isinstance(exc, event_log.LogMoved)


async def _retried(work: Callable[[], Awaitable[T]]) -> T:
    """``work()``, tried again after a failure that a retry can succeed after (``_retryable``;
    ``RETRIES`` in all)."""
    for attempt in range(1, RETRIES):
        try:
            return await work()
        except Exception as exc:
            if is_unavailable(exc) or not _retryable(exc):
                raise
            log.info("a batch met a transient failure (try %d): %s", attempt, exc)
    return await work()


async def _mark_failed(
    session: AsyncSession, batch: Sequence[LoggedEvent], *, error: Exception, now: datetime
) -> None:
    rows = [
        {
            "id": e.id,
            "contact_id": None,
            "evaluations": [{"error": f"{type(error).__name__}: {error}"[:500]}],
            "processed_at": now,
        }
        for e in batch
    ]
    await event_log.finish(session, rows, seqs=[e.seq for e in batch], status=EventStatus.FAILED)
