"""Waking runs: claim the runs that are due (a wait is over, or a cron fan-out started them) and
advance them to the next wait or the end.

Each batch is one transaction: the claim is committed first (with a lease), then the advanced
state, deliveries and trace are written together. A worker that dies between the two leaves
``active`` rows whose lease expires; another worker claims and advances them again.

One run never holds back another: a run whose steps raise is failed alone, with the reason in
its run log; a batch the database refuses is written again run by run, so that only the run
whose rows cannot be stored fails.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smr.config import Settings
from smr.db import is_unavailable, unit_of_work
from smr.playbooks import EventView, RunView
from smr.repositories import Record
from smr.repositories import cron_slots as cron_repo
from smr.repositories import events as events_repo
from smr.repositories import runs as runs_repo
from smr.services import contacts
from smr.services.catalog import Catalog
from smr.services.plan import Plan, advance
from smr.statuses import RunStatus
from smr.telemetry import ClaimKind, Telemetry

log = logging.getLogger(__name__)

#: A run as its claim returned it: every column of ``runs``.
ClaimedRun = Record


class Waker:
    def __init__(
        self,
        settings: Settings,
        *,
        sessions: async_sessionmaker[AsyncSession],
        catalog: Catalog,
        clock: Callable[[], datetime],
        telemetry: Telemetry | None = None,
    ) -> None:
        self._sessions = sessions
        self._catalog = catalog
        self._telemetry = telemetry or Telemetry()
        self._clock = clock
        self._lease = timedelta(seconds=settings.lease_seconds)
        self._batch_size = settings.batch_size
        self._lanes = settings.wake_lanes

    async def tick(self, *, max_batches: int = 20) -> tuple[int, int]:
        """Advance due runs batch by batch, in ``wake_lanes`` concurrent lanes (each claims its
        own runs, so one lane plans while another's batch is written); returns (runs advanced,
        deliveries now due)."""
        lanes = await asyncio.gather(*(self._lane(max_batches) for _ in range(self._lanes)))
        return sum(a for a, _ in lanes), sum(d for _, d in lanes)

    async def _lane(self, max_batches: int) -> tuple[int, int]:
        advanced = due = 0
        for _ in range(max_batches):
            async with unit_of_work(self._sessions) as session:
                with self._telemetry.timed_claim(ClaimKind.RUNS):
                    runs = await runs_repo.claim_due(
                        session, now=self._clock(), lease=self._lease, limit=self._batch_size
                    )
            if not runs:
                break
            due += await self._advance_batch(runs)
            advanced += len(runs)
            if len(runs) < self._batch_size:
                break
        return advanced, due

    async def _advance_batch(self, runs: Sequence[ClaimedRun]) -> int:
        try:
            async with unit_of_work(self._sessions) as session:
                return await self._advance(session, runs)
        except Exception as exc:
            if is_unavailable(exc):
                raise
            if len(runs) == 1:  # already alone: it is the one that cannot be written
                await self._fail_alone(runs[0], exc)
                return 0
            log.warning(
                "a batch of %d runs could not be written; writing them one by one", len(runs)
            )
        due = 0
        for run in runs:
            due += await self._advance_batch([run])
        return due

    async def _fail_alone(self, run: ClaimedRun, exc: Exception) -> None:
        log.error("run %s could not be written; it is failed", run.id, exc_info=exc)
        plan = Plan()
        self._fail(plan, run, f"its state could not be stored: {type(exc).__name__}", self._clock())
        try:
            async with unit_of_work(self._sessions) as session:
                await plan.write(session)
        except Exception as error:  # the other runs of the batch still go on
            if is_unavailable(error):
                raise
            log.error("run %s could not be failed either; its lease will expire", run.id)

    async def _advance(self, session: AsyncSession, runs: Sequence[ClaimedRun]) -> int:
        now = self._clock()
        states = await contacts.load_states(session, [r.contact_id for r in runs])
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
        await contacts.write_back(session, list(states.values()), now=now)
        await plan.write(session)
        return plan.deliveries_due

    def _resume(
        self,
        plan: Plan,
        run: ClaimedRun,
        contact: contacts.ContactState,
        trigger: EventView,
        now: datetime,
    ) -> None:
        playbook = self._catalog.version(run.playbook_version)
        if playbook is None:
            self._fail(plan, run, f"playbook version {run.playbook_version} is not available", now)
            return
        woke_at = run.wake_at or now
        if run.pc > 0:  # at 0 the run has not taken a step yet (a cron fan-out started it)
            plan.note(run.id, now, "wake", planned=woke_at.isoformat())
        state = advance(
            plan,
            self._catalog,
            playbook,
            run=RunView(id=run.id, playbook_id=run.playbook_id, started_at=run.started_at),
            pc=run.pc,
            event=trigger,
            trigger=trigger,
            contact=contact,
            now=woke_at,
        )
        plan.updated.append({"id": run.id, **state})

    @staticmethod
    def _fail(plan: Plan, run: ClaimedRun, reason: str, now: datetime) -> None:
        plan.updated.append(_ended(run, RunStatus.FAILED, reason, now))
        plan.note(run.id, now, "error", reason=reason)
        plan.note(run.id, now, "end", status=RunStatus.FAILED, reason=reason)


def _ended(run: ClaimedRun, status: RunStatus, reason: str, now: datetime) -> dict[str, object]:
    return {
        "id": run.id,
        "status": status,
        "pc": run.pc,
        "wake_at": None,
        "lease_until": None,
        "ended_at": now,
        "end_reason": reason,
        "updated_at": now,
    }
