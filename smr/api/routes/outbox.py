"""GET /v1/mock/outbox: what the mock channel "sent"."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from smr.api.deps import AdminOnly, SessionDep
from smr.api.models import OutboxMessage, Page
from smr.api.openapi import ADMIN
from smr.repositories import outbox
from smr.repositories._sql import decode_cursor, page
from smr.schemas import AwareTime

router = APIRouter(prefix="/v1/mock", tags=["mock"], dependencies=[AdminOnly], responses=ADMIN)


@router.get("/outbox", response_model=Page[OutboxMessage])
async def list_outbox(
    session: SessionDep,
    contact: str | None = None,
    since: AwareTime | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    rows = await outbox.list_outbox(
        session, contact_id=contact, since=since, before=decode_cursor(cursor), limit=limit
    )
    items, next_cursor = page(rows, limit, key="delivery_id")
    return {
        "items": [
            {
                "delivery_id": r.delivery_id,
                "channel": r.channel,
                "contact_id": r.contact_id,
                "recipient": r.recipient,
                "text": r.text,
                "params": r.params,
                "sent_at": r.sent_at.isoformat(),
            }
            for r in items
        ],
        "next_cursor": next_cursor,
    }
