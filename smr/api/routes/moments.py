"""Moments (朋友圈): GET /v1/moments, the posts SMR made through the ``moment`` channel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from smr.api.deps import AdminOnly, SessionDep
from smr.api.models import MomentTaskOut, Page
from smr.api.openapi import ADMIN
from smr.models import MomentTaskStatus
from smr.repositories import moments as repo
from smr.repositories._sql import decode_cursor, page
from smr.repositories.moments import StoredTask

router = APIRouter(
    prefix="/v1/moments", tags=["moments"], dependencies=[AdminOnly], responses=ADMIN
)

Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get("", response_model=Page[MomentTaskOut])
async def list_moments(
    session: SessionDep,
    status: MomentTaskStatus | None = None,
    cursor: str | None = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """Moments tasks, newest first: their status, who published them, the likes and comments
    read back so far."""
    rows = await repo.list_tasks(session, status=status, before=decode_cursor(cursor), limit=limit)
    items, next_cursor = page(rows, limit)
    return {"items": [task_json(t) for t in items], "next_cursor": next_cursor}


def task_json(task: StoredTask) -> dict[str, Any]:
    return {
        "id": task.id,
        "jobid": task.jobid,
        "delivery_id": task.delivery_id,
        "playbook_id": task.playbook_id,
        "moment_id": task.moment_id,
        "status": task.status,
        "published_by": list(task.published_by),
        "likes": task.likes,
        "comments": task.comments,
        "response": task.response,
        "created_at": task.created_at.isoformat(),
        "updated_at": task.updated_at.isoformat(),
    }
