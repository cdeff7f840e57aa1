"""POST /v1/events (ingest) and GET /v1/events/{id} (how each playbook judged it)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from smr.api.deps import AdminOnly, SessionDep, ingest_request
from smr.api.errors import invalid
from smr.api.models import EventDetail, IngestAnswer
from smr.api.openapi import ADMIN, TOKEN, json_body, problems
from smr.schemas import EventBatch, EventIn, parse_posted
from smr.services import runlog

router = APIRouter(prefix="/v1/events", tags=["events"])


@router.post(
    "",
    status_code=202,
    response_model=None,
    responses={202: {"model": IngestAnswer}, **TOKEN, **problems(413)},
    openapi_extra=json_body(EventIn, EventBatch, description="One event, or a batch."),
)
async def post_events(request: Request) -> Response:
    runtime, body = await ingest_request(request)
    try:
        posted = parse_posted(body, received_at=runtime.clock())
    except ValidationError as exc:
        raise invalid(exc) from exc
    report = await runtime.ingest(posted.events, source="api", received=posted.received)
    results = [r.as_json() for r in report.results]
    is_batch = isinstance(body, dict) and "events" in body
    # Plain JSON already: answered as is, without a response model to validate it against
    # (ids and statuses only: no value orjson would refuse).
    answer = {"results": results} if is_batch else results[0]
    return Response(orjson.dumps(answer), status_code=202, media_type="application/json")


@router.get(
    "/{event_id}",
    dependencies=[AdminOnly],
    response_model=EventDetail,
    responses={**ADMIN, **problems(404)},
)
async def get_event(event_id: str, session: SessionDep) -> dict[str, Any]:
    return await runlog.event_detail(session, event_id)
