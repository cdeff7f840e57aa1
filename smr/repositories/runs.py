"""Runs and their trace entries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Update

from smr.models import Contact, CronSlot, Delivery, Event, Run, TraceEntry, table_of
from smr.playbooks import EventView
from smr.repositories._bulk import Write, insert_many, update_many, write_together
from smr.repositories._sql import any_of, dialect_name, is_one_of, one_of
from smr.repositories.rows import EndedRun, NewDelivery, NewRun, RunUpdate, TraceRow
from smr.statuses import RunStatus

#: A run not ended yet.
ACTIVE = (RunStatus.ACTIVE, RunStatus.WAITING)

_RUNS = table_of(Run)


@dataclass(frozen=True)
class ActiveRunRow:
    """An active run as exit rules see it: its playbook version and its trigger event."""

    id: str
    playbook_id: str
    version: str
    started_at: datetime
    trigger: EventView
    item: str | None = None


@dataclass
class History:
    """What re-entry rules need to know about one (contact, playbook)."""

    active_run_ids: list[str] = field(default_factory=list)
    last_started_at: datetime | None = None


@dataclass(frozen=True)
class Watched:
    """The runs re-entry rules look at: a contact's runs of ``playbook_ids`` that are active,
    or that started after ``since`` (the longest cooldown that matters; None: starts do not
    matter)."""

    playbook_ids: frozenset[str]
    since: datetime | None

    @classmethod
    def within(cls, playbook_ids: Iterable[str], *, cooldown: timedelta, now: datetime) -> Watched:
        """The runs of ``playbook_ids`` that re-entry rules look at ``now``, given the longest
        ``cooldown`` that matters (zero: none)."""
        return cls(frozenset(playbook_ids), since=now - cooldown if cooldown else None)

    def params(self) -> dict[str, Any]:
        return {} if self.since is None else {"since": self.since}


async def history(
    session: AsyncSession, *, contact_ids: Iterable[str], watched: Watched
) -> dict[tuple[str, str], History]:
    """Per (contact, playbook): what re-entry rules need to know (see ``Watched``). One
    query."""
    contacts = list(set(contact_ids))
    if not contacts or not watched.playbook_ids:
        return {}
    stmt = _history(dialect_name(session), with_since=watched.since is not None)
    rows = await session.execute(stmt, {"contacts": contacts, **watched.params()})
    found: dict[tuple[str, str], History] = {}
    for contact_id, playbook_id, run_id, status, started_at in rows:  # in run id order
        if playbook_id not in watched.playbook_ids:
            continue
        entry = found.setdefault((contact_id, playbook_id), History())
        if status in ACTIVE:
            entry.active_run_ids.append(run_id)
        if entry.last_started_at is None or started_at > entry.last_started_at:
            entry.last_started_at = started_at
    return found


# The playbooks are picked in Python, not in SQL: with a playbook condition the planner may
# walk ix_runs_playbook_id_id whenever its statistics predate that playbook's runs (a cron
# fan-out to a million contacts then reads every run started so far, on every batch). The
# contacts' runs through ix_runs_contact_id_playbook_id_status stay a few rows per contact.
@cache
def _history(dialect: str, *, with_since: bool) -> Select[str, str, str, str, datetime]:
    return (
        select(
            _RUNS.c.contact_id, _RUNS.c.playbook_id, _RUNS.c.id, _RUNS.c.status, _RUNS.c.started_at
        )
        .where(any_of(dialect, _RUNS.c.contact_id, "contacts"), _recent(with_since=with_since))
        .order_by(_RUNS.c.id)
    )


def _recent(*, with_since: bool) -> ColumnElement[bool]:
    active = is_one_of(_RUNS.c.status, ACTIVE)
    return or_(active, _RUNS.c.started_at > bindparam("since")) if with_since else active


async def active_with_triggers(
    session: AsyncSession, *, contact_ids: Iterable[str], playbook_ids: Iterable[str]
) -> dict[str, list[ActiveRunRow]]:
    """contact id → its active runs of these playbooks, each with its trigger event."""
    contacts, playbooks = list(set(contact_ids)), list(set(playbook_ids))
    found: dict[str, list[ActiveRunRow]] = {}
    if not contacts or not playbooks:
        return found
    stmt = _active_with_triggers(dialect_name(session))
    wanted = set(playbooks)
    for run, event, slot in await session.execute(stmt, {"contacts": contacts}):
        if run.playbook_id not in wanted:
            continue  # playbooks are picked here, as in ``history``
        found.setdefault(run.contact_id, []).append(
            ActiveRunRow(
                run.id,
                run.playbook_id,
                run.playbook_version,
                run.started_at,
                trigger_view(run, event, slot),
                run.item,
            )
        )
    return found


@cache
def _active_with_triggers(dialect: str) -> Select[Run, Event, CronSlot]:
    return (
        select(Run, Event, CronSlot)
        .outerjoin(Event, Event.id == Run.trigger_event_id)
        .outerjoin(CronSlot, CronSlot.id == Run.cron_slot_id)
        .where(any_of(dialect, Run.contact_id, "contacts"), Run.status.in_(ACTIVE))
        .order_by(Run.id)
    )


def slot_event(slot_id: str, playbook_id: str, slot_at: datetime) -> EventView:
    """A schedule firing, as the ``trigger`` of the runs it starts."""
    data = {"slot": slot_at.isoformat(), "playbook": playbook_id}
    return EventView(id=slot_id, type="schedule", occurred_at=slot_at, data=data)


def trigger_view(run: Run | DueRun, event: Event | None, slot: CronSlot | None) -> EventView:
    """What started a run: its event, or the schedule slot that fired it."""
    if event is not None:
        return EventView(
            id=event.id, type=event.type, occurred_at=event.occurred_at, data=event.data
        )
    if slot is not None:
        return slot_event(slot.id, slot.playbook_id, slot.slot_at)
    return EventView(id=run.id, type="schedule", occurred_at=run.started_at)


async def insert_started(
    session: AsyncSession,
    *,
    runs: list[NewRun],
    deliveries: list[NewDelivery],
    trace: list[TraceRow],
) -> None:
    """Insert new runs, deliveries and trace entries (of new or known runs), together: one
    statement on PostgreSQL (see ``_bulk.write_together``)."""
    await write_together(session, started(runs=runs, deliveries=deliveries, trace=trace))


def started(
    *,
    runs: list[NewRun],
    deliveries: list[NewDelivery],
    trace: list[TraceRow],
) -> list[Write]:
    """``insert_started`` as writes, for ``_bulk.write_together``."""
    return [
        Write(table_of(Run), [r.columns() for r in runs]),
        Write(table_of(Delivery), [d.columns() for d in deliveries]),
        Write(table_of(TraceEntry), [t.columns() for t in trace]),
    ]


async def insert_trace(session: AsyncSession, rows: list[TraceRow]) -> None:
    await insert_many(session, table_of(TraceEntry), [r.columns() for r in rows])


_RESUMED = ("status", "pc", "wake_at", "lease_until", "ended_at", "end_reason", "updated_at")


async def update_runs(session: AsyncSession, rows: list[RunUpdate]) -> None:
    """Write back runs a processor advanced (waiting when it read them; one ended meanwhile,
    by an admin, stays ended)."""
    table = table_of(Run)
    waiting = ("status", [RunStatus.WAITING])
    given = [r.columns() for r in rows]
    await update_many(session, table, given, columns=_RESUMED, only_if=waiting)


@dataclass(frozen=True)
class DueRun:
    """A waiting run whose wake time has come, as the processor advances it."""

    id: str
    contact_id: str
    playbook_id: str
    playbook_version: str
    trigger_event_id: str | None
    cron_slot_id: str | None
    pc: int
    wake_at: datetime
    started_at: datetime
    item: str | None
    #: Its contact's event log partition.
    partition: int


_DUE_COLUMNS = [getattr(_RUNS.c, f.name) for f in fields(DueRun) if f.name != "partition"]


async def due(
    session: AsyncSession, *, partitions: list[int], now: datetime, limit: int
) -> list[DueRun]:
    """Up to ``limit`` waiting runs due at ``now`` whose contacts are in ``partitions``,
    those due first first. Not locked: the partition's owner is the only one to advance
    them (an admin may still end one; writing it back then leaves it ended). A read only:
    a processor fences its partitions only when some are due."""
    if not partitions:
        return []
    stmt = _due(session, partitions, now).order_by(_RUNS.c.wake_at).limit(limit)
    return [DueRun(**row) for row in (await session.execute(stmt)).mappings()]


async def due_one(
    session: AsyncSession, run_id: str, *, partitions: list[int], now: datetime
) -> DueRun | None:
    """The run ``run_id`` if it is still one of ``due``'s."""
    if not partitions:
        return None
    stmt = _due(session, partitions, now).where(_RUNS.c.id == run_id)
    row = (await session.execute(stmt)).mappings().first()
    return DueRun(**row) if row else None


def _due(session: AsyncSession, partitions: list[int], now: datetime) -> Select[Any]:
    contacts = table_of(Contact)
    return (
        select(*_DUE_COLUMNS, contacts.c.partition)
        .join(contacts, contacts.c.id == _RUNS.c.contact_id)
        .where(
            _RUNS.c.status == RunStatus.WAITING,
            _RUNS.c.wake_at <= now,
            one_of(session, contacts.c.partition, partitions),
        )
    )


def _end_statement() -> Update:
    table = table_of(Run)
    return (
        update(table)
        .where(table.c.id == bindparam("b_id"), table.c.status.in_(ACTIVE))
        .values(
            status=bindparam("status"),
            end_reason=bindparam("end_reason"),
            ended_at=bindparam("ended_at"),
            updated_at=bindparam("ended_at"),
            wake_at=None,
            lease_until=None,
        )
    )


def _end_params(row: EndedRun) -> dict[str, Any]:
    return {
        "b_id": row.id,
        "status": row.status,
        "end_reason": row.end_reason,
        "ended_at": row.ended_at,
    }


async def end_runs(session: AsyncSession, rows: list[EndedRun]) -> None:
    """End active or waiting runs; a run that has already ended is left as it was."""
    await update_many(
        session,
        table_of(Run),
        [r.columns() for r in rows],
        columns=("status", "end_reason", "ended_at", "updated_at"),
        only_if=("status", ACTIVE),
        set_null=("wake_at", "lease_until"),
    )


async def end_run(session: AsyncSession, row: EndedRun) -> bool:
    """End one run; False when it was no longer active or waiting."""
    stmt = _end_statement().returning(table_of(Run).c.id)
    return (await session.execute(stmt, _end_params(row))).first() is not None


async def get(session: AsyncSession, run_id: str) -> Run | None:
    return await session.get(Run, run_id)


async def trace_of(session: AsyncSession, run_id: str) -> Sequence[TraceEntry]:
    stmt = select(TraceEntry).where(TraceEntry.run_id == run_id).order_by(TraceEntry.id)
    return (await session.scalars(stmt)).all()


async def of_event(session: AsyncSession, event_id: str) -> Sequence[Run]:
    stmt = select(Run).where(Run.trigger_event_id == event_id).order_by(Run.id)
    return (await session.scalars(stmt)).all()


async def active_of(session: AsyncSession, contact_id: str) -> Sequence[Run]:
    stmt = select(Run).where(Run.contact_id == contact_id, Run.status.in_(ACTIVE))
    return (await session.scalars(stmt.order_by(Run.id))).all()


async def list_runs(
    session: AsyncSession,
    *,
    contact_id: str | None = None,
    playbook_id: str | None = None,
    status: RunStatus | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: str | None = None,
    limit: int,
) -> Sequence[Run]:
    stmt = select(Run).order_by(Run.id.desc()).limit(limit + 1)
    filters = {
        Run.contact_id: contact_id,
        Run.playbook_id: playbook_id,
        Run.status: status,
    }
    stmt = stmt.where(*(col == value for col, value in filters.items() if value is not None))
    if since is not None:
        stmt = stmt.where(Run.started_at >= since)
    if until is not None:
        stmt = stmt.where(Run.started_at < until)
    if before is not None:
        stmt = stmt.where(Run.id < before)
    return (await session.scalars(stmt)).all()


async def statuses(session: AsyncSession, run_ids: Iterable[str]) -> dict[str, RunStatus]:
    """run id → its status, for the runs that exist."""
    wanted = list(set(run_ids))
    if not wanted:
        return {}
    rows = await session.execute(_statuses(dialect_name(session)), {"ids": wanted})
    return {row.id: row.status for row in rows}


@cache
def _statuses(dialect: str) -> Select[str, RunStatus]:
    table = table_of(Run)
    return select(table.c.id, table.c.status).where(any_of(dialect, table.c.id, "ids"))
