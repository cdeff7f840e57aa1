"""Admin cancellations, each traced in the run log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from smr.errors import Conflict, NotFound
from smr.repositories import deliveries as deliveries_repo
from smr.repositories import runs as runs_repo
from smr.repositories.rows import TraceRow
from smr.services.funnel import Tally
from smr.services.plan import Plan
from smr.statuses import DeliveryStatus, RunStatus


@dataclass(frozen=True, slots=True)
class CancelledRun:
    """A run an admin ended, and its deliveries that were still scheduled."""

    id: str
    deliveries_cancelled: list[str]
    status: Literal[RunStatus.CANCELLED] = RunStatus.CANCELLED


async def cancel_delivery(
    session: AsyncSession, delivery_id: str, *, now: datetime, tz: tzinfo
) -> None:
    """Raises NotFound, or Conflict unless the delivery is still scheduled. ``tz``: the
    policies' timezone, whose day the cancellation counts on (``smr.services.funnel``)."""
    delivery = await deliveries_repo.get(session, delivery_id)
    if delivery is None:
        raise NotFound(f"No delivery {delivery_id}.")
    if not await deliveries_repo.cancel(session, ids=[delivery_id], now=now):
        raise Conflict(f"Delivery {delivery_id} is {delivery.status}; only scheduled ones cancel.")
    await runs_repo.insert_trace(
        session, [_cancelled(delivery.run_id, delivery_id, delivery.step, now)]
    )
    tally = Tally(tz)
    tally.delivery(delivery, DeliveryStatus.CANCELLED, None, at=now)
    await tally.write(session)  # last: see counts.add


async def cancel_run(
    session: AsyncSession, run_id: str, *, now: datetime, tz: tzinfo
) -> CancelledRun:
    """End an active or waiting run and cancel its scheduled deliveries (counted on ``tz``'s
    day, as ``cancel_delivery``).

    Raises NotFound, or Conflict when the run has already ended.
    """
    run = await runs_repo.get(session, run_id)
    if run is None:
        raise NotFound(f"No run {run_id}.")
    plan = Plan()
    plan.end(run_id, status=RunStatus.CANCELLED, reason="cancelled by an admin", at=now)
    if not await runs_repo.end_run(session, plan.ended[0]):
        raise Conflict(f"Run {run_id} is {run.status}; only active or waiting runs cancel.")
    pending = await deliveries_repo.scheduled_of_runs(session, [run_id])
    cancelled = await deliveries_repo.cancel(session, ids=pending, now=now)
    plan.trace += [_cancelled(run_id, d, None, now) for d in cancelled]
    await runs_repo.insert_trace(session, plan.trace)
    tally = Tally(tz)
    tally.plan(plan, now=now)
    for delivery in await deliveries_repo.of_run(session, run_id):
        if delivery.id in cancelled:
            tally.delivery(delivery, DeliveryStatus.CANCELLED, None, at=now)
    await tally.write(session)  # last: see counts.add
    return CancelledRun(run_id, cancelled)


def _cancelled(run_id: str, delivery_id: str, step: str | None, now: datetime) -> TraceRow:
    detail = {"delivery_id": delivery_id, "status": DeliveryStatus.CANCELLED, "by": "admin"}
    return TraceRow(run_id=run_id, at=now, step=step, kind="delivery", detail=detail)
