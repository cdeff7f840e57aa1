"""Segments (客户分层): GET /v1/segments, GET /v1/segments/{id}, GET /v1/segments/{id}/contacts.

Segments are defined in the playbooks folder's ``segments/`` (see ``smr.segments``); their
members are kept as customers change (``smr.services.segments``), so a count is a read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query

from smr.api.deps import AdminOnly, RuntimeDep, SessionDep
from smr.api.models import Page, SegmentDetail, SegmentList, SegmentMemberOut
from smr.api.openapi import ADMIN, problems
from smr.api.routes.playbooks import error_json
from smr.errors import NotFound
from smr.repositories import segments as repo
from smr.repositories._sql import decode_cursor, encode_cursor
from smr.segments import FOLDER, Segment

router = APIRouter(
    prefix="/v1/segments", tags=["segments"], dependencies=[AdminOnly], responses=ADMIN
)
Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get("", response_model=SegmentList)
async def list_segments(session: SessionDep, runtime: RuntimeDep) -> dict[str, Any]:
    """Every segment defined, with its members counted now, and the segment files' errors."""
    counts = await repo.counts(session)
    filled = await repo.filled(session)
    current = runtime.catalog.segments.current
    return {
        "segments": [
            _segment_json(s, counts.get(s.id, 0), filled) for s in sorted(current.values(), key=_id)
        ],
        "errors": [
            error_json(e) for e in runtime.catalog.errors if Path(e.file).parent.name == FOLDER
        ],
    }


@router.get("/{segment_id}", response_model=SegmentDetail, responses=problems(404))
async def get_segment(segment_id: str, session: SessionDep, runtime: RuntimeDep) -> dict[str, Any]:
    segment = _defined(runtime, segment_id)
    filled = await repo.filled(session)
    return _segment_json(segment, await repo.count(session, segment_id), filled)


@router.get(
    "/{segment_id}/contacts", response_model=Page[SegmentMemberOut], responses=problems(404)
)
async def segment_contacts(
    segment_id: str,
    session: SessionDep,
    runtime: RuntimeDep,
    cursor: str | None = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """The segment's members, newest contact first: a preview of who is in it."""
    _defined(runtime, segment_id)
    rows = await repo.members(session, segment_id, before=decode_cursor(cursor), limit=limit + 1)
    items = rows[:limit]
    next_cursor = encode_cursor(items[-1][0].id) if len(rows) > limit else None
    return {
        "items": [
            {"id": c.id, "name": c.name, "tags": c.tags, "since": since.isoformat()}
            for c, since in items
        ],
        "next_cursor": next_cursor,
    }


def _defined(runtime: RuntimeDep, segment_id: str) -> Segment:
    segment = runtime.catalog.segments.current.get(segment_id)
    if segment is None:
        raise NotFound(f"No segment {segment_id}.")
    return segment


def _id(segment: Segment) -> str:
    return segment.id


def _segment_json(segment: Segment, members: int, filled: dict[str, str]) -> dict[str, Any]:
    spec = segment.spec
    return {
        "id": segment.id,
        "description": spec.description,
        "file": segment.file,
        "version": segment.version,
        "tags_any": spec.tags_any,
        "tags_none": spec.tags_none,
        "if": spec.condition,
        "members": members,
        "filled": filled.get(segment.id) == segment.version,
    }
