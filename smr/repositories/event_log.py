"""The event log as processors read it: pending events by partition, marked processed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from smr.eventlog import Backlog, EventStatus, LoggedEvent
from smr.models import Event, EventLogEntry, table_of
from smr.repositories._bulk import update_many
from smr.repositories._sql import one_of
from smr.schemas import ContactRef

#: Urgent events a batch takes at most, before the oldest others.
URGENT_PER_BATCH = 100


async def backlog(session: AsyncSession, *, bound: int, now: datetime) -> Backlog:
    """How many events wait (counted up to ``bound`` + 1: the gate needs no more), and how
    long the oldest has waited."""
    counted = select(EventLogEntry.seq).limit(bound + 1).subquery()
    size = await session.scalar(select(func.count()).select_from(counted))
    oldest = await session.scalar(
        select(EventLogEntry.received_at).order_by(EventLogEntry.seq).limit(1)
    )
    lag = 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())
    return Backlog(size=size or 0, lag_seconds=lag)


async def take(
    session: AsyncSession, *, partitions: list[int], limit: int, urgent_first: bool = True
) -> list[LoggedEvent]:
    """The next events of ``partitions``, in the order they were accepted: the oldest
    ``limit``, and (``urgent_first``) before them the urgent ones (``URGENT_PER_BATCH`` at
    most) with the events of the same route accepted before them, wherever they are in the
    log."""
    if not partitions:
        return []
    log = EventLogEntry
    mine = one_of(session, log.partition, partitions)
    oldest = await _read(session, select(log.seq).where(mine).order_by(log.seq).limit(limit))
    if not urgent_first:
        return oldest
    urgent = (
        await session.execute(
            select(log.seq, log.route)
            .where(log.urgent, mine)
            .order_by(log.seq)
            .limit(URGENT_PER_BATCH)
        )
    ).all()
    newest = oldest[-1].seq if oldest else -1
    late = [u for u in urgent if u.seq > newest]
    if not late:
        return oldest
    before = (
        select(log.seq)
        .where(mine, one_of(session, log.route, list({u.route for u in late})))
        .where(log.seq > newest, log.seq <= max(u.seq for u in late))
    )
    extra = await _read(session, before)
    return sorted([*oldest, *extra], key=lambda e: e.seq)


async def _read(session: AsyncSession, seqs: Any) -> list[LoggedEvent]:
    log = EventLogEntry
    stmt = (
        select(
            log.seq,
            log.partition,
            Event.id,
            Event.source,
            Event.key,
            Event.type,
            Event.occurred_at,
            Event.received_at,
            Event.contact,
            Event.data,
        )
        .join(Event, Event.id == log.event_id)
        .where(log.seq.in_(seqs.scalar_subquery()))
        .order_by(log.seq)
    )
    return [_logged(row) for row in await session.execute(stmt)]


def _logged(row: Row[Any]) -> LoggedEvent:
    return LoggedEvent(
        seq=row.seq,
        id=row.id,
        source=row.source,
        key=row.key,
        type=row.type,
        occurred_at=row.occurred_at,
        received_at=row.received_at,
        partition=row.partition,
        # Validated when accepted. The defaults given here cost nothing; pydantic inspects a
        # default factory's signature each time it calls one (6 µs an event).
        contact=ContactRef.model_construct(**{"attributes": {}, **(row.contact or {})}),
        data=row.data,
    )


_FINISHED = ("contact_id", "evaluations", "status", "processed_at")


class LogMoved(Exception):
    """Entries a batch read left the log before it marked them: an erasure took them out
    (``smr.repositories.personal_data``). The batch is rolled back and taken again."""


async def finish(
    session: AsyncSession,
    processed: Sequence[dict[str, Any]],
    *,
    seqs: Sequence[int],
    status: EventStatus = EventStatus.PROCESSED,
) -> None:
    """Mark events processed (each row: ``id``, ``contact_id``, ``evaluations``,
    ``processed_at``), or ``status`` (a row's own ``status`` first), and take their entries
    (``seqs``) out of the log.

    Raises ``LogMoved`` when some of the entries are no longer there."""
    if not processed:
        return
    rows = [{"status": status, **row} for row in processed]
    await update_many(session, table_of(Event), rows, columns=_FINISHED)
    taken: Any = await session.execute(  # a DELETE's CursorResult
        delete(EventLogEntry).where(one_of(session, EventLogEntry.seq, list(seqs)))
    )
    if taken.rowcount != len(seqs):
        raise LogMoved(f"{len(seqs) - taken.rowcount} of {len(seqs)} entries left the log")
