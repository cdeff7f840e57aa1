"""Moments (朋友圈): the tasks SMR posted (``moment_tasks``) and the likes and comments read
back (``moment_engagements``)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from smr.ids import new_id
from smr.models import (
    Delivery,
    MomentEngagement,
    MomentEngagementKind,
    MomentTask,
    MomentTaskStatus,
    table_of,
)
from smr.repositories._bulk import insert_new
from smr.repositories._sql import insert_ignoring_conflicts

_ENGAGEMENTS = table_of(MomentEngagement)
_TASKS = table_of(MomentTask)


@dataclass(frozen=True, slots=True)
class StoredTask:
    id: str
    jobid: str
    delivery_id: str
    moment_id: str | None
    status: MomentTaskStatus
    published_by: tuple[str, ...]
    response: str | None
    created_at: datetime
    updated_at: datetime
    playbook_id: str | None = None
    likes: int = 0
    comments: int = 0


@dataclass(frozen=True, slots=True)
class Origin:
    """What posted a moment SMR made: the playbook and its delivery."""

    playbook_id: str | None
    delivery_id: str


@dataclass(frozen=True, slots=True)
class Engagement:
    """One like or comment of a customer on a moment, as its event is keyed."""

    key: str
    moment_id: str
    staff: str
    external_userid: str
    kind: MomentEngagementKind
    created_at: datetime


async def add_task(session: AsyncSession, *, jobid: str, delivery_id: str, now: datetime) -> None:
    """The task add_moment_task answered ``jobid`` for (a repeat of the jobid is ignored)."""
    row = _row(jobid, delivery_id, MomentTaskStatus.CREATING, now=now)
    await session.execute(insert_ignoring_conflicts(session, _TASKS), [row])


async def task_by_jobid(session: AsyncSession, jobid: str) -> StoredTask | None:
    row = await session.scalar(select(MomentTask).where(MomentTask.jobid == jobid))
    return None if row is None else _stored(row)


async def save_task(
    session: AsyncSession,
    *,
    jobid: str,
    delivery_id: str,
    status: MomentTaskStatus,
    moment_id: str | None,
    published_by: Sequence[str],
    response: str | None,
    now: datetime,
) -> None:
    """Record what WeCom says of the task now; adds the row if the send could not."""
    await add_task(session, jobid=jobid, delivery_id=delivery_id, now=now)
    values: dict[str, Any] = {
        "status": status,
        "moment_id": moment_id,
        "published_by": list(published_by),
        "response": response,
        "updated_at": now,
    }
    await session.execute(update(MomentTask).where(MomentTask.jobid == jobid).values(**values))


async def update_publishers(
    session: AsyncSession, moment_id: str, published_by: Sequence[str], *, now: datetime
) -> None:
    """The staff who have published a moment SMR saw published, as WeCom lists them now."""
    stmt = (
        update(MomentTask)
        .where(MomentTask.moment_id == moment_id, MomentTask.status == MomentTaskStatus.PUBLISHED)
        .values(published_by=sorted(published_by), updated_at=now)
    )
    await session.execute(stmt)


async def origins(session: AsyncSession, moment_ids: Collection[str]) -> dict[str, Origin]:
    """moment_id → the playbook and delivery that posted it, for the moments SMR made."""
    if not moment_ids:
        return {}
    stmt = (
        select(MomentTask.moment_id, MomentTask.delivery_id, Delivery.playbook_id)
        .outerjoin(Delivery, Delivery.id == MomentTask.delivery_id)
        .where(MomentTask.moment_id.in_(list(moment_ids)))
    )
    rows = (await session.execute(stmt)).all()
    return {str(m): Origin(playbook_id=p, delivery_id=d) for m, d, p in rows}


async def record_engagements(session: AsyncSession, engagements: Sequence[Engagement]) -> int:
    """Store likes and comments not stored yet; how many were new."""
    rows = [
        {
            "key": e.key,
            "moment_id": e.moment_id,
            "staff": e.staff,
            "external_userid": e.external_userid,
            "kind": e.kind,
            "created_at": e.created_at,
        }
        for e in engagements
    ]
    return len(await insert_new(session, _ENGAGEMENTS, rows, returning=["key"]))


async def list_tasks(
    session: AsyncSession,
    *,
    status: MomentTaskStatus | None = None,
    before: str | None = None,
    limit: int,
) -> list[StoredTask]:
    """Tasks newest first, ``limit + 1`` of them (see ``_sql.page``), with the playbook that
    posted each and its likes and comments."""
    stmt = (
        select(MomentTask, Delivery.playbook_id)
        .outerjoin(Delivery, Delivery.id == MomentTask.delivery_id)
        .order_by(MomentTask.id.desc())
        .limit(limit + 1)
    )
    if status is not None:
        stmt = stmt.where(MomentTask.status == status)
    if before is not None:
        stmt = stmt.where(MomentTask.id < before)
    rows = (await session.execute(stmt)).all()
    counts = await _counts(session, [t.moment_id for t, _ in rows if t.moment_id])
    return [
        _stored(
            task,
            playbook_id=playbook_id,
            likes=counts.get((task.moment_id or "", MomentEngagementKind.LIKE), 0),
            comments=counts.get((task.moment_id or "", MomentEngagementKind.COMMENT), 0),
        )
        for task, playbook_id in rows
    ]


async def _counts(session: AsyncSession, moment_ids: list[str]) -> dict[tuple[str, str], int]:
    if not moment_ids:
        return {}
    stmt = (
        select(MomentEngagement.moment_id, MomentEngagement.kind, func.count())
        .where(MomentEngagement.moment_id.in_(moment_ids))
        .group_by(MomentEngagement.moment_id, MomentEngagement.kind)
    )
    return {(m, k): int(n) for m, k, n in (await session.execute(stmt)).all()}


def _row(
    jobid: str, delivery_id: str, status: MomentTaskStatus, *, now: datetime
) -> dict[str, Any]:
    return {
        "id": new_id("mt", now),
        "jobid": jobid,
        "delivery_id": delivery_id,
        "moment_id": None,
        "status": status,
        "published_by": [],
        "response": None,
        "created_at": now,
        "updated_at": now,
    }


def _stored(row: MomentTask, **extra: Any) -> StoredTask:
    return StoredTask(
        id=row.id,
        jobid=row.jobid,
        delivery_id=row.delivery_id,
        moment_id=row.moment_id,
        status=MomentTaskStatus(row.status),
        published_by=tuple(str(s) for s in row.published_by or ()),
        response=row.response,
        created_at=row.created_at,
        updated_at=row.updated_at,
        **extra,
    )
