"""Rows past their retention, deleted a batch at a time (``smr.services.retention``).

Each table is pruned in the order of its key, which follows the rows' age: the time-ordered ids
of events (``smr.ids``), the autoincrement of trace entries and attempts, the delivery id of
outbox rows. The oldest rows are found below the first row young enough to keep
(``first_kept``), so a batch is a range of the key's index, and a pass that finds nothing left
to prune reads one row. A row never goes before its time; one written out of order (an event
processed long after it was received is judged, and traced, as of its receipt) waits for a pass
after the rows written before it go.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from smr.eventlog import EventStatus
from smr.models import Base, DeliveryAttempt, Event, MockOutbox, Run, TraceEntry
from smr.repositories._sql import one_of
from smr.repositories.runs import ACTIVE


@dataclass(frozen=True)
class Aging:
    """A table's rows by age: ``key`` orders them as ``at`` about does; only the rows
    ``prunable`` says may go."""

    name: str
    model: type[Base]
    key: InstrumentedAttribute[Any]
    at: InstrumentedAttribute[Any]
    prunable: ColumnElement[bool]


EVENTS = Aging(
    "events",
    Event,
    Event.id,
    Event.received_at,
    # Not one waiting in the log, nor one a run not ended yet reads (its templates, its exits).
    (Event.status != EventStatus.PENDING)
    & ~exists().where(Run.trigger_event_id == Event.id, Run.status.in_(ACTIVE)),
)
TRACE = Aging("trace", TraceEntry, TraceEntry.id, TraceEntry.at, true())
ATTEMPTS = Aging("attempts", DeliveryAttempt, DeliveryAttempt.id, DeliveryAttempt.at, true())
OUTBOX = Aging("outbox", MockOutbox, MockOutbox.delivery_id, MockOutbox.sent_at, true())


async def first_kept(session: AsyncSession, aging: Aging, *, before: datetime) -> Any | None:
    """The lowest key of a row at or after ``before``: every row below it is older. None when
    every row is older."""
    stmt = select(aging.key).where(aging.at >= before).order_by(aging.key).limit(1)
    return await session.scalar(stmt)


async def prune(
    session: AsyncSession, aging: Aging, *, below: Any | None, before: datetime, limit: int
) -> int:
    """Delete up to ``limit`` of the oldest prunable rows: keys below ``below`` (when None,
    rows older than ``before``); how many. An event's ended runs forget it
    (``trigger_event_id`` NULL)."""
    old = aging.key < below if below is not None else aging.at < before
    stmt = select(aging.key).where(old, aging.prunable).order_by(aging.key).limit(limit)
    keys = list(await session.scalars(stmt))
    if not keys:
        return 0
    if aging is EVENTS:
        await session.execute(
            update(Run)
            .where(one_of(session, Run.trigger_event_id, keys))
            .values(trigger_event_id=None)
        )
    await session.execute(delete(aging.model).where(one_of(session, aging.key, keys)))
    return len(keys)
