"""Waking runs: advance the runs that are due (a wait is over, or a cron fan-out started them)
to their next wait or their end.

The processors do it, each for the partitions it holds (``Processor``): a run goes with its
contact's partition, so the one lane that handles a contact's events also advances its runs,
one batch at a time. A batch is one transaction: it reads the due runs of the lane's
partitions, and when there are some, fences (renews the lane's partition leases) and
advances those of the partitions still held, without a claim or a lease of its own: a
processor that dies mid-batch leaves the runs waiting, and the partitions' next owner
advances them. The deliveries a batch makes due at once are written claimed and gated in the
same transaction (``Woken.gated``), for the processor to send after the commit.

One run never holds back another: a run whose steps raise is failed alone, with the reason in
its run log; a batch the database refuses is written again run by run, so that only the run
whose rows cannot be stored fails.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smr.db import is_transient, is_unavailable, unit_of_work
from smr.playbooks import EventView, RunView
from smr.repositories import cron_slots as cron_repo
from smr.repositories import events as events_repo
from smr.repositories import runs as runs_repo
from smr.repositories.rows import RunUpdate
from smr.repositories.runs import DueRun
from smr.services import contacts, emitting, segments
from smr.services.catalog import Catalog
from smr.services.dispatch import Claimed, Dispatcher
from smr.services.funnel import Tally
from smr.services.plan import Plan, advance, ended
from smr.statuses import RunStatus
from smr.telemetry import ClaimKind, Telemetry

log = logging.getLogger(__name__)

#: In a transaction, first: renew the lane's partition leases; the partitions still held.
Fence = Callable[[AsyncSession], Awaitable[list[int]]]


@dataclass(frozen=True)
class Woken:
    runs: int = 0
    #: The deliveries due at once, written claimed and gated: the caller sends them after
    #: the commit (``Dispatcher.send``).
    gated: list[Claimed] = field(default_factory=list)


class Waker:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        catalog: Catalog,
        clock: Callable[[], datetime],
        batch_size: int,
        dispatcher: Dispatcher,
        telemetry: Telemetry,
    ) -> None:
        """``dispatcher``: its lease is the one the deliveries due at once are claimed for,
        and its gate the one they pass (see ``Woken``)."""
        self._sessions = sessions
        self._dispatcher = dispatcher
        self._catalog = catalog
        self._clock = clock
        self._batch_size = batch_size
        self._telemetry = telemetry

    async def wake(self, partitions: list[int], fence: Fence) -> Woken:
        """Advance one batch of the due runs of ``partitions`` that ``fence`` still holds. A
        deadlock or a serialization failure is raised (the caller tries again); any other
        failure of the batch has its runs advanced one by one."""
        taken: list[str] = []
        try:
            async with unit_of_work(self._sessions) as session:
                runs = await self._due(session, partitions, fence)
                taken = [r.id for r in runs]
                gated = await self._advance(session, runs)
            return Woken(len(runs), gated)
        except Exception as exc:
            if not taken or is_unavailable(exc) or is_transient(exc):
                raise
            log.warning(
                "a batch of %d runs could not be written; writing them one by one", len(taken)
            )
        woken = [await self._alone(partitions, fence, run_id) for run_id in taken]
        return Woken(sum(w.runs for w in woken), [d for w in woken for d in w.gated])

    async def _due(
        self, session: AsyncSession, partitions: list[int], fence: Fence
    ) -> list[DueRun]:
        """The due runs of ``partitions``, read first (a transaction that finds none writes
        nothing), then fenced: those of partitions no longer held are left to their owner."""
        now, limit = self._clock(), self._batch_size
        with self._telemetry.timed_claim(ClaimKind.RUNS):
            runs = await runs_repo.due(session, partitions=partitions, now=now, limit=limit)
        if not runs:
            return []
        held = set(await fence(session))
        return [r for r in runs if r.partition in held]

    async def _alone(self, partitions: list[int], fence: Fence, run_id: str) -> Woken:
        """Advance one run of a batch that failed; fail it when it fails alone."""
        run: DueRun | None = None
        try:
            async with unit_of_work(self._sessions) as session:
                held = [p for p in await fence(session) if p in partitions]
                run = await runs_repo.due_one(session, run_id, partitions=held, now=self._clock())
                gated = await self._advance(session, [run] if run else [])
            return Woken(1 if run else 0, gated)
        except Exception as exc:
            if is_unavailable(exc) or run is None:
                raise
            failed = await self._fail_alone(fence, run, exc)
            # A run that could not even be failed does not count: the lane does not take it
            # again at once, but after its idle wait.
            return Woken(1 if failed else 0)

    async def _fail_alone(self, fence: Fence, run: DueRun, exc: Exception) -> bool:
        log.error("run %s could not be written; it is failed", run.id, exc_info=exc)
        plan = Plan()
        now = self._clock()
        self._fail(plan, run, f"its state could not be stored: {type(exc).__name__}", now)
        try:
            async with unit_of_work(self._sessions) as session:
                await fence(session)
                await plan.write(session)
                await self._count(session, plan, now=now)
        except Exception as error:  # the other runs of the batch still go on
            if is_unavailable(error):
                raise
            log.error("run %s could not be failed either; it is taken again later", run.id)
            return False
        return True

    async def _advance(self, session: AsyncSession, runs: Sequence[DueRun]) -> list[Claimed]:
        if not runs:
            return []
        now = self._clock()
        states = await contacts.load_states(session, [r.contact_id for r in runs])
        # Contacts are locked from here: one erased since its runs were read has them
        # cancelled already (``smr.services.privacy``); one merged since has given them to
        # its survivor, whose partition's turn it is to advance them (``smr.services.merging``).
        runs = [r for r in runs if not states[r.contact_id].gone]
        triggers = await events_repo.by_ids(session, [r.trigger_event_id for r in runs])
        slots = await cron_repo.by_ids(session, [r.cron_slot_id for r in runs])
        await self._catalog.recall_versions(session, {r.playbook_version for r in runs})
        plan = Plan()
        for run in runs:
            trigger = runs_repo.trigger_view(
                run, triggers.get(run.trigger_event_id or ""), slots.get(run.cron_slot_id or "")
            )
            mark = plan.mark()
            try:
                self._resume(plan, run, states[run.contact_id], trigger, now)
            except Exception as exc:  # one run's fault is that run's, never the batch's
                log.exception("run %s failed while advancing", run.id)
                plan.undo(mark)
                self._fail(plan, run, f"internal error: {type(exc).__name__}: {exc}"[:500], now)
        filled = await segments.filled(session, self._catalog)
        moves = segments.reassess(states.values(), self._catalog, now=now, filled=filled)
        claimed = plan.claim_due(now=now, lease_until=now + self._dispatcher.lease)
        await contacts.write_back(session, list(states.values()), now=now)
        await plan.write(session)
        await segments.write(session, moves, now=now)
        await emitting.post(session, emitting.emitted(plan.emitted, now=now), now=now)
        gated = await self._dispatcher.gate(session, claimed)
        await self._count(session, plan, now=now)
        return gated

    async def _count(self, session: AsyncSession, plan: Plan, *, now: datetime) -> None:
        tally = Tally(self._catalog.policies.tz)
        tally.plan(plan, now=now)
        await tally.write(session)  # last: see counts.add

    def _resume(
        self,
        plan: Plan,
        run: DueRun,
        contact: contacts.ContactState,
        trigger: EventView,
        now: datetime,
    ) -> None:
        playbook = self._catalog.version(run.playbook_version)
        if playbook is None:
            self._fail(plan, run, f"playbook version {run.playbook_version} is not available", now)
            return
        if run.pc > 0:  # at 0 the run has not taken a step yet (a cron fan-out started it)
            plan.note(run.id, now, "wake", planned=run.wake_at.isoformat())
        state = advance(
            plan,
            self._catalog,
            playbook,
            run=RunView(
                id=run.id, playbook_id=run.playbook_id, started_at=run.started_at, item=run.item
            ),
            pc=run.pc,
            event=trigger,
            trigger=trigger,
            contact=contact,
            now=run.wake_at,
        )
        plan.updated.append(RunUpdate(id=run.id, state=state))

    @staticmethod
    def _fail(plan: Plan, run: DueRun, reason: str, now: datetime) -> None:
        state = ended(RunStatus.FAILED, now, reason=reason, pc=run.pc)
        plan.updated.append(RunUpdate(id=run.id, state=state))
        plan.note(run.id, now, "error", reason=reason)
        plan.note(run.id, now, "end", status=RunStatus.FAILED, reason=reason)
