"""Runs and their trace entries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from smr.models import Run, TraceEntry, table_of
from smr.repositories._sql import insert_many, one_of

ACTIVE = ("active", "waiting")


@dataclass
class History:
    """What re-entry rules need to know about one (contact, playbook)."""

    active_run_ids: list[str] = field(default_factory=list)
    last_started_at: datetime | None = None


async def history(
    session: AsyncSession, *, contact_ids: Iterable[str], playbook_ids: Iterable[str]
) -> dict[tuple[str, str], History]:
    contacts, playbooks = list(set(contact_ids)), list(set(playbook_ids))
    found: dict[tuple[str, str], History] = {}
    if not contacts or not playbooks:
        return found
    scope = (one_of(session, Run.contact_id, contacts), one_of(session, Run.playbook_id, playbooks))
    last = select(Run.contact_id, Run.playbook_id, func.max(Run.started_at)).where(*scope)
    for cid, pid, started in await session.execute(last.group_by(Run.contact_id, Run.playbook_id)):
        found[(cid, pid)] = History(last_started_at=started)
    active = select(Run.contact_id, Run.playbook_id, Run.id).where(*scope, Run.status.in_(ACTIVE))
    for cid, pid, rid in await session.execute(active.order_by(Run.id)):
        found.setdefault((cid, pid), History()).active_run_ids.append(rid)
    return found


async def insert_runs(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    await insert_many(session, table_of(Run), rows)


async def insert_trace(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    await insert_many(session, table_of(TraceEntry), rows)


async def end_runs(session: AsyncSession, rows: list[dict[str, Any]]) -> list[str]:
    """End active runs: rows of {id, status, end_reason, ended_at}. Returns the ids it ended."""
    if not rows:
        return []
    table = table_of(Run)
    stmt = (
        update(table)
        .where(table.c.id == bindparam("b_id"), table.c.status.in_(ACTIVE))
        .values(
            status=bindparam("status"),
            end_reason=bindparam("end_reason"),
            ended_at=bindparam("ended_at"),
            updated_at=bindparam("ended_at"),
            wake_at=None,
        )
    )
    await session.execute(
        stmt, [{"b_id": r["id"], **{k: r[k] for k in r if k != "id"}} for r in rows]
    )
    return [r["id"] for r in rows]


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
    status: str | None = None,
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
