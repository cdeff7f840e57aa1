"""POST /v1/events (ingest) and GET /v1/events/{id} (how each playbook judged it)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from smr.api.deps import AdminOnly, IngestOrAdmin, JsonBody, RuntimeDep, SessionDep
from smr.api.errors import invalid
from smr.schemas import parse_events
from smr.services import runlog

router = APIRouter(prefix="/v1/events", tags=["events"])


@router.post("", status_code=202, dependencies=[IngestOrAdmin], response_model=None)
async def post_events(body: JsonBody, runtime: RuntimeDep) -> JSONResponse:
    try:
        events = parse_events(body)
    except ValidationError as exc:
        raise invalid(exc) from exc
    report = await runtime.ingest(events, source="api")
    results = [r.as_json() for r in report.results]
    is_batch = isinstance(body, dict) and "events" in body
    # Plain JSON already: answered as is, without a response model to validate it against.
    return JSONResponse({"results": results} if is_batch else results[0], status_code=202)


@router.get("/{event_id}", dependencies=[AdminOnly])
async def get_event(event_id: str, session: SessionDep) -> dict[str, Any]:
    return await runlog.event_detail(session, event_id)
