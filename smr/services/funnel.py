"""The funnel of each playbook, step and version, counted in the transactions that decide it:
runs started, refused (by reason), completed, exited (by rule), failed and cancelled; at each
send step, messages scheduled, sent, skipped (by reason), failed and awaiting a staff member.

A transaction collects what it decided in a ``Tally`` and writes it last
(``smr.repositories.counts.add``): a report (``smr.services.report``) sums a few rows a day,
however many runs there were.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime, tzinfo
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from smr.models import Delivery
from smr.playbooks.engine import Outcome
from smr.repositories import Record
from smr.repositories import counts as repo
from smr.repositories.counts import CountKey
from smr.services.plan import Plan
from smr.statuses import DeliveryStatus, RunStatus, SkipReason


class Metric(StrEnum):
    """What a count counts (a refusal and a skip also name their reason:
    ``run.refused.condition_false``, ``send.skipped.opted_out``)."""

    STARTED = "run.started"
    REFUSED = "run.refused"
    CONVERTED = "run.converted"
    COMPLETED = "run.completed"
    EXITED = "run.exited"
    FAILED = "run.failed"
    CANCELLED = "run.cancelled"
    SCHEDULED = "send.scheduled"
    SENT = "send.sent"
    SKIPPED = "send.skipped"
    SEND_FAILED = "send.failed"
    AWAITING = "send.awaiting"
    SEND_CANCELLED = "send.cancelled"


#: The evaluations that are refusals (a chat line without the keyword is not one).
REFUSALS = frozenset(
    {
        Outcome.CONDITION_FALSE,
        Outcome.CONDITION_ERROR,
        Outcome.REFUSED_MODE,
        Outcome.REFUSED_COOLDOWN,
        Outcome.NO_ITEMS,
    }
)
RUN_ENDS = {
    RunStatus.COMPLETED: Metric.COMPLETED,
    RunStatus.EXITED: Metric.EXITED,
    RunStatus.FAILED: Metric.FAILED,
    RunStatus.CANCELLED: Metric.CANCELLED,
}
SEND_ENDS = {
    DeliveryStatus.SENT: Metric.SENT,
    DeliveryStatus.SKIPPED: Metric.SKIPPED,
    DeliveryStatus.FAILED: Metric.SEND_FAILED,
    DeliveryStatus.AWAITING: Metric.AWAITING,
    DeliveryStatus.CANCELLED: Metric.SEND_CANCELLED,
}
_EXIT_RULE = re.compile(r"exit_on\[\d+\]")


def skipped(reason: SkipReason | str | None) -> str:
    return f"{Metric.SKIPPED}.{reason}" if reason else str(Metric.SKIPPED)


class Tally:
    """What one transaction adds to the funnels; ``write`` it last."""

    def __init__(self, tz: tzinfo) -> None:
        self._tz = tz
        self._days: dict[datetime, str] = {}
        self._known: Counter[CountKey] = Counter()
        #: (run id, step, metric, day): counted for the run's playbook and version.
        self._counted: list[tuple[str, str, str, str]] = []
        #: run id → (playbook id, version), as far as the rows counted tell.
        self._versions: dict[str, tuple[str, str]] = {}

    def evaluations(self, records: Iterable[Mapping[str, Any]], *, at: datetime) -> None:
        """The refusals among an event's evaluations (``RunPlanner.on_event``)."""
        for record in records:
            if record.get("outcome") in REFUSALS:
                metric = f"{Metric.REFUSED}.{record['outcome']}"
                key = CountKey(record["playbook"], self._day(at), record["version"], "", metric)
                self._known[key] += 1

    def plan(self, plan: Plan, *, now: datetime) -> None:
        """Runs started and ended, and messages scheduled (or skipped at once), in ``plan``."""
        for run in plan.runs:
            self._versions[run.id] = (run.playbook_id, run.playbook_version)
            self._count(run.id, "", Metric.STARTED, run.started_at)
            if (metric := RUN_ENDS.get(run.state.status)) is not None:  # done at once
                self._count(run.id, "", metric, run.state.ended_at or run.started_at)
        for update in plan.updated:
            if (metric := RUN_ENDS.get(update.state.status)) is not None:
                self._count(update.id, "", metric, update.state.ended_at or now)
        for ended in plan.ended:
            rule = _EXIT_RULE.match(ended.end_reason)
            step = rule.group() if rule else ""
            self._count(ended.id, step, RUN_ENDS[ended.status], ended.ended_at)
        for delivery in plan.deliveries:
            self._versions[delivery.run_id] = (delivery.playbook_id, delivery.playbook_version)
            self._count(delivery.run_id, delivery.step, Metric.SCHEDULED, now)
            if delivery.status == DeliveryStatus.SKIPPED:
                self._count(delivery.run_id, delivery.step, skipped(delivery.skip_reason), now)

    def converted(self, run_id: str, playbook_id: str, version: str, *, at: datetime) -> None:
        """A run reached its playbook's goal (``smr.services.goals``)."""
        self._versions[run_id] = (playbook_id, version)
        self._count(run_id, "", Metric.CONVERTED, at)

    def delivery(
        self,
        row: Record | Delivery,
        status: DeliveryStatus,
        reason: SkipReason | None,
        *,
        at: datetime,
    ) -> None:
        """A delivery's outcome (a retry or a deferral is none)."""
        if (metric := SEND_ENDS.get(status)) is None:
            return
        if version := getattr(row, "playbook_version", None):  # else looked up by its run
            self._versions[row.run_id] = (row.playbook_id, version)
        name = skipped(reason) if metric == Metric.SKIPPED else str(metric)
        self._count(row.run_id, row.step, name, at)

    async def write(self, session: AsyncSession) -> None:
        unknown = {run_id for run_id, *_ in self._counted} - self._versions.keys()
        versions = {**self._versions, **await repo.versions_of(session, unknown)}
        counts: Counter[CountKey] = Counter(self._known)
        for run_id, step, metric, day in self._counted:
            if (found := versions.get(run_id)) is not None:
                counts[CountKey(found[0], day, found[1], step, metric)] += 1
        await repo.add(session, counts)

    def _count(self, run_id: str, step: str, metric: str, at: datetime) -> None:
        self._counted.append((run_id, step, metric, self._day(at)))

    def _day(self, at: datetime) -> str:
        # Asked for again and again with the batch's one ``now``: worked out once.
        if (day := self._days.get(at)) is None:
            day = self._days[at] = at.astimezone(self._tz).strftime("%Y-%m-%d")
        return day
