"""Customer groups (客户群): GET /v1/groups, GET /v1/groups/{chat_id},
POST /v1/groups/{chat_id}/tags, POST /v1/groups/sync.

Groups come from WeCom (the daily sync and the callbacks); their tags are SMR's own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from smr.api.deps import AdminOnly, JsonBody, RuntimeDep, SessionDep
from smr.api.errors import invalid
from smr.api.models import GroupDetail, GroupSummary, GroupSyncAnswer, Page
from smr.api.openapi import ADMIN, json_body, problems
from smr.errors import NotFound
from smr.models import GroupStatus
from smr.repositories import group_reads as repo
from smr.repositories._sql import decode_cursor, page
from smr.repositories.group_reads import StoredGroup, StoredMember
from smr.services import groups

router = APIRouter(prefix="/v1/groups", tags=["groups"], dependencies=[AdminOnly], responses=ADMIN)

MAX_TAGS = 100
NOT_CONFIGURED = (
    "WeCom groups are not configured: set SMR_WECOM__CORP_ID and SMR_WECOM__CONTACT_SECRET "
    "(or SMR_WECOM__SECRET)."
)
Limit = Annotated[int, Query(ge=1, le=1000)]
GroupTag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class TagsIn(BaseModel):
    """Tags to add to and remove from a group (a tag in both is removed)."""

    model_config = ConfigDict(extra="forbid")

    add: Annotated[list[GroupTag], Field(max_length=MAX_TAGS)] = []
    remove: Annotated[list[GroupTag], Field(max_length=MAX_TAGS)] = []

    @model_validator(mode="after")
    def _not_empty(self) -> TagsIn:
        if not self.add and not self.remove:
            raise ValueError("give at least one tag to add or remove")
        return self


@router.get("", response_model=Page[GroupSummary])
async def list_groups(
    session: SessionDep,
    owner: Annotated[str | None, Query(max_length=200)] = None,
    name_contains: Annotated[str | None, Query(max_length=200)] = None,
    tag: Annotated[str | None, Query(max_length=100)] = None,
    status: GroupStatus | None = None,
    cursor: str | None = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """Groups by chat_id, descending; filters combine."""
    rows = await repo.list_groups(
        session,
        owner=owner,
        name_contains=name_contains,
        tag=tag,
        status=status,
        before=decode_cursor(cursor),
        limit=limit,
    )
    items, next_cursor = page(rows, limit, key="chat_id")
    return {"items": [group_json(g) for g in items], "next_cursor": next_cursor}


@router.post("/sync", response_model=GroupSyncAnswer, status_code=202, responses=problems(404))
async def sync_groups(runtime: RuntimeDep) -> dict[str, Any]:
    """Start a full sync with WeCom now, in the background."""
    if runtime.groups is None or runtime.groups.source is None:
        raise NotFound(NOT_CONFIGURED)
    return {"status": "started" if runtime.groups.start() else "running"}


@router.get("/{chat_id}", response_model=GroupDetail, responses=problems(404))
async def get_group(chat_id: str, session: SessionDep) -> dict[str, Any]:
    group, members = await groups.detail(session, chat_id)
    return {**group_json(group), "members": [member_json(m) for m in members]}


@router.post(
    "/{chat_id}/tags",
    response_model=GroupSummary,
    responses=problems(404, 413),
    openapi_extra=json_body(TagsIn),
)
async def change_tags(chat_id: str, body: JsonBody, session: SessionDep) -> dict[str, Any]:
    try:
        request = TagsIn.model_validate(body)
    except ValidationError as exc:
        raise invalid(exc) from exc
    group = await groups.change_tags(session, chat_id, add=request.add, remove=request.remove)
    return group_json(group)


def group_json(group: StoredGroup) -> dict[str, Any]:
    return {
        "chat_id": group.chat_id,
        "name": group.name,
        "owner": group.owner,
        "notice": group.notice,
        "status": group.status,
        "owner_status": group.owner_status,
        "member_count": group.member_count,
        "member_version": group.member_version,
        "tags": list(group.tags),
        "created_at": _time(group.created_at),
        "synced_at": _time(group.synced_at),
        "updated_at": group.updated_at.isoformat(),
    }


def member_json(member: StoredMember) -> dict[str, Any]:
    return {
        "userid": member.userid,
        "type": member.type,
        "contact_id": member.contact_id,
        "name": member.name,
        "join_time": _time(member.join_time),
        "join_scene": member.join_scene,
        "invitor": member.invitor,
        "group_nickname": member.group_nickname,
    }


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
