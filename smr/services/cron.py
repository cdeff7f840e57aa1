"""Schedule playbooks: record each cron slot once, then fan it out to its audience in batches.

A tick first inserts the slots that came due (the unique (playbook, slot time) key makes every
worker agree on one row per slot; the most recent slot within the grace period is ``pending``,
older ones ``missed``). Then it claims pending slots with a lease and walks the audience in id
order: each batch starts its runs and moves the slot's cursor in one transaction, guarded by
the lease, so a batch is either fully applied or retried from the same cursor by whoever holds
the slot next. The runs start due at once; the waker (on every worker) takes their steps.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smr.config import Settings
from smr.db import one_writer_at_a_time, unit_of_work
from smr.ids import new_id
from smr.models import CronSlot
from smr.playbooks import EventView, LoadedPlaybook, ScheduleTrigger
from smr.playbooks.schedule import Schedule, due_slots
from smr.repositories import cron_slots as cron_repo
from smr.repositories.runs import slot_event
from smr.services.audience import plan_runs, read_page
from smr.services.catalog import Catalog
from smr.services.funnel import Tally
from smr.services.plan import Plan

log = logging.getLogger(__name__)

#: Batches of one slot being written at once (PostgreSQL), each committing after the one
#: before: three ran 5 % faster than two in bench/scale.py's fan-out (five runs each).
WRITES_IN_FLIGHT = 3


@dataclass
class CronReport:
    """What one tick did."""

    slots_recorded: int = 0
    runs_started: int = 0


@dataclass
class _Batch:
    """A page of a slot's audience and the runs it starts."""

    ids: list[str]
    plan: Plan


@dataclass(frozen=True)
class _Mark:
    """Where a slot's fan-out stands: its cursor and the lease it is held by."""

    cursor: str | None
    lease: datetime


@dataclass(frozen=True)
class _Write:
    """A batch's write, to run, and the mark it leaves the slot at."""

    run: Coroutine[Any, Any, None]
    to: _Mark
    #: Set once the write has moved the cursor (not yet committed), or failed.
    taken: asyncio.Event


@dataclass(frozen=True)
class _Held:
    """A slot this worker claimed: where its fan-out stood and the lease it claimed it by."""

    id: str
    playbook: LoadedPlaybook
    slot_at: datetime
    cursor: str | None
    lease: datetime


class Cron:
    def __init__(
        self,
        settings: Settings,
        *,
        sessions: async_sessionmaker[AsyncSession],
        catalog: Catalog,
        clock: Callable[[], datetime],
    ) -> None:
        self._sessions = sessions
        self._catalog = catalog
        self._clock = clock
        self._lease = timedelta(seconds=settings.lease_seconds)
        self._batch_size = settings.batch_size
        self._grace = timedelta(seconds=settings.cron_grace_seconds)
        # A batch is written while the one before commits, where the database allows it.
        self._overlap = not one_writer_at_a_time(settings.effective_database_url)
        self._first_seen: dict[str, datetime] = {}
        self._schedules: dict[tuple[str, str], Schedule] = {}

    async def tick(self, *, max_batches: int = 20) -> CronReport:
        """Record due slots, then fan out pending ones, at most ``max_batches`` batches.
        Without schedule playbooks a tick costs no query."""
        if not self._scheduled():
            return CronReport()
        report = CronReport(slots_recorded=await self.record_due_slots())
        budget = max_batches
        while budget > 0 and (held := await self._claim()) is not None:
            budget = await self._fan_out(held, report, budget=budget)
        return report

    async def record_due_slots(self) -> int:
        """Insert the slots of every enabled schedule playbook that came due since its last
        recorded slot (or since it was first loaded); returns how many rows this call created."""
        playbooks = self._scheduled()
        if not playbooks:
            return 0
        now = self._clock()
        async with unit_of_work(self._sessions) as session:
            ids = [p.id for p in playbooks]
            latest = await cron_repo.latest_slots(session, ids)
            since = await cron_repo.known_since(session, ids)
            rows = [
                row
                for p in playbooks
                for row in self._slot_rows(p, after=latest.get(p.id) or since.get(p.id), now=now)
            ]
            return len(await cron_repo.insert_slots(session, rows))

    def next_slot(self, after: datetime) -> datetime | None:
        """The first slot of any enabled schedule playbook strictly after ``after``."""
        upcoming = (self._schedule(p).next_after(after) for p in self._scheduled())
        return min((at for at in upcoming if at is not None), default=None)

    def _scheduled(self) -> list[LoadedPlaybook]:
        return [p for p in self._catalog.result.playbooks.values() if _is_scheduled(p)]

    def _slot_rows(
        self, playbook: LoadedPlaybook, *, after: datetime | None, now: datetime
    ) -> list[dict[str, Any]]:
        start = after or self._first_seen.setdefault(playbook.id, now)
        due = due_slots(self._schedule(playbook), after=start, now=now, grace=self._grace)
        if due.missed_unrecorded:
            log.warning(
                "%s: %d older missed slots not recorded", playbook.id, due.missed_unrecorded
            )
        rows = [_slot_row(playbook, at, status="missed", now=now) for at in due.missed]
        if due.fire is not None:
            rows.append(_slot_row(playbook, due.fire, status="pending", now=now))
        return rows

    def _schedule(self, playbook: LoadedPlaybook) -> Schedule:
        trigger = _schedule_trigger(playbook)
        key = (trigger.schedule, self._catalog.policies.timezone)
        if key not in self._schedules:
            self._schedules[key] = Schedule.parse(trigger.schedule, tz=self._catalog.policies.tz)
        return self._schedules[key]

    async def _claim(self) -> _Held | None:
        """Claim a slot whose playbook is still scheduled; other claimed slots are skipped."""
        while True:
            async with unit_of_work(self._sessions) as session:
                slot = await cron_repo.claim_one(session, now=self._clock(), lease=self._lease)
                if slot is None:
                    return None
                playbook = await self._playbook_of(session, slot)
                if playbook is not None:
                    assert slot.lease_until is not None
                    return _Held(slot.id, playbook, slot.slot_at, slot.cursor, slot.lease_until)
                await self._finish(session, slot, status="skipped")

    async def _playbook_of(self, session: AsyncSession, slot: CronSlot) -> LoadedPlaybook | None:
        """The slot's version, if its playbook is still an enabled schedule playbook."""
        current = self._catalog.result.playbooks.get(slot.playbook_id)
        if current is None or not _is_scheduled(current):
            return None
        await self._catalog.recall_versions(session, {slot.playbook_version})
        return self._catalog.for_run(slot.playbook_id, slot.playbook_version)

    async def _finish(self, session: AsyncSession, slot: CronSlot, *, status: str) -> None:
        assert slot.lease_until is not None
        log.info("cron slot %s of %s: %s", slot.id, slot.playbook_id, status)
        await cron_repo.advance(
            session,
            slot.id,
            held=slot.lease_until,
            at=slot.cursor,
            cursor=slot.cursor,
            runs_started=0,
            status=status,
            lease_until=None,
            now=self._clock(),
        )

    async def _fan_out(self, held: _Held, report: CronReport, *, budget: int) -> int:
        """Batches of one slot until its audience is exhausted, the budget is spent (the lease
        is then released for any worker) or another worker took it over; returns the budget
        left. The next batch is read (on a connection of its own) and planned while this one
        is written, and up to ``WRITES_IN_FLIGHT`` are written at once: each write moves the
        cursor on from where the one before leaves it, so it lands only after that one, and
        only if it did."""
        preparing = asyncio.create_task(self._prepare(held, after=held.cursor))
        writing: deque[asyncio.Task[None]] = deque()
        mark, taken = _Mark(held.cursor, held.lease), None
        try:
            while budget > 0:
                budget -= 1
                batch = await preparing
                finished = len(batch.ids) < self._batch_size
                if not finished and budget > 0:
                    preparing = asyncio.create_task(self._prepare(held, after=batch.ids[-1]))
                keep = budget > 0 and not finished
                step = self._write(
                    held, batch, report, mark, after=taken, finished=finished, keep=keep
                )
                writing.append(asyncio.create_task(step.run))
                mark, taken = step.to, step.taken
                if len(writing) >= WRITES_IN_FLIGHT:
                    await writing.popleft()
                if finished:
                    break
            while writing:
                await writing.popleft()
        except cron_repo.LeaseLost:
            log.warning("cron slot %s was taken over by another worker", held.id)
        finally:
            await _discard(preparing)
            for task in writing:
                await _discard(task)
        return budget

    async def _prepare(self, held: _Held, *, after: str | None) -> _Batch:
        """The next page of the audience after ``after``, and the runs it starts."""
        now = self._clock()
        async with unit_of_work(self._sessions) as session:
            page = await read_page(
                session, held.playbook, after=after, limit=self._batch_size, now=now
            )
        plan = plan_runs(self._catalog, held.playbook, trigger=_trigger(held), page=page, now=now)
        return _Batch(page.ids, plan)

    def _write(
        self,
        held: _Held,
        batch: _Batch,
        report: CronReport,
        mark: _Mark,
        *,
        after: asyncio.Event | None,
        finished: bool,
        keep: bool,
    ) -> _Write:
        """Write the batch's runs and move the cursor past the batch, from ``mark``, in one
        transaction. ``keep``: hold the lease for another batch, else release it. Its ``run``
        raises LeaseLost (the transaction rolls back) if the slot is not at ``mark`` when it
        gets there: another worker took it over, or the write before this one failed.

        ``after``: the previous write has taken the slot's row (or failed). The cursor moves
        only after that, so that on PostgreSQL this write waits for that one to end; SQLite,
        whose writers take turns from BEGIN, starts this write only then."""
        now = self._clock()
        to = _Mark(batch.ids[-1] if batch.ids else mark.cursor, now + self._lease)
        taken = asyncio.Event()

        async def run() -> None:
            try:
                if after is not None and not self._overlap:
                    await after.wait()
                async with unit_of_work(self._sessions) as session:
                    await batch.plan.write(session)
                    if after is not None:
                        await after.wait()
                    await cron_repo.advance(
                        session,
                        held.id,
                        held=mark.lease,
                        at=mark.cursor,
                        cursor=to.cursor,
                        runs_started=len(batch.plan.runs),
                        status="done" if finished else "running",
                        lease_until=to.lease if keep else None,
                        now=now,
                    )
                    tally = Tally(self._catalog.policies.tz)
                    tally.plan(batch.plan, now=now)
                    await tally.write(session)  # last: see counts.add
                    taken.set()
            finally:
                taken.set()
            report.runs_started += len(batch.plan.runs)

        return _Write(run(), to, taken)


async def _discard(task: asyncio.Task[Any] | None) -> None:
    """Let a batch prepared or written ahead that is no longer needed finish (cancelling it
    mid-query would cost its connection); its result, or its error, goes nowhere."""
    if task is None:
        return
    try:
        await task
    except Exception:  # the batch was never going to be written, or land
        log.debug("a batch handled ahead for a cron slot failed", exc_info=True)


def _is_scheduled(playbook: LoadedPlaybook) -> bool:
    return playbook.spec.enabled and isinstance(playbook.spec.trigger, ScheduleTrigger)


def _schedule_trigger(playbook: LoadedPlaybook) -> ScheduleTrigger:
    trigger = playbook.spec.trigger
    assert isinstance(trigger, ScheduleTrigger)
    return trigger


def _trigger(held: _Held) -> EventView:
    return slot_event(held.id, held.playbook.id, held.slot_at)


def _slot_row(
    playbook: LoadedPlaybook, at: datetime, *, status: str, now: datetime
) -> dict[str, Any]:
    return {
        "id": new_id("cs", now),
        "playbook_id": playbook.id,
        "playbook_version": playbook.version,
        "slot_at": at,
        "status": status,
        "runs_started": 0,
        "created_at": now,
        "updated_at": now,
    }
