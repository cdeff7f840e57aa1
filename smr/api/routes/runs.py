"""The run log: GET /v1/runs, GET /v1/runs/{id}."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query

from smr.api.deps import AdminOnly, RuntimeDep, SessionDep
from smr.api.models import Page, RunCancelled, RunDetail, RunSummary
from smr.api.openapi import ADMIN, problems
from smr.repositories import runs as repo
from smr.repositories._sql import decode_cursor, page
from smr.schemas import AwareTime
from smr.services import cancel, runlog
from smr.statuses import RunStatus

router = APIRouter(prefix="/v1/runs", tags=["runs"], dependencies=[AdminOnly], responses=ADMIN)

Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get("", response_model=Page[RunSummary])
async def list_runs(
    session: SessionDep,
    contact: str | None = None,
    playbook: str | None = None,
    status: RunStatus | None = None,
    since: AwareTime | None = None,
    until: AwareTime | None = None,
    cursor: str | None = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    rows = await repo.list_runs(
        session,
        contact_id=contact,
        playbook_id=playbook,
        status=status,
        since=since,
        until=until,
        before=decode_cursor(cursor),
        limit=limit,
    )
    items, next_cursor = page(rows, limit)
    return {"items": [runlog.run_json(r) for r in items], "next_cursor": next_cursor}


@router.get("/{run_id}", response_model=RunDetail, responses=problems(404))
async def get_run(run_id: str, session: SessionDep) -> dict[str, Any]:
    return await runlog.run_detail(session, run_id)


@router.post("/{run_id}/cancel", response_model=RunCancelled, responses=problems(404, 409))
async def cancel_run(run_id: str, session: SessionDep, runtime: RuntimeDep) -> dict[str, Any]:
    tz = runtime.catalog.policies.tz
    return asdict(await cancel.cancel_run(session, run_id, now=runtime.clock(), tz=tz))
