"""The outbox: GET /v1/deliveries."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from smr.api.deps import AdminOnly, RuntimeDep, SessionDep
from smr.api.models import DeliveryCancelled, DeliverySummary, Page
from smr.api.openapi import ADMIN, problems
from smr.repositories import deliveries as repo
from smr.repositories._sql import decode_cursor, page
from smr.services import cancel, runlog
from smr.statuses import DeliveryStatus

router = APIRouter(
    prefix="/v1/deliveries", tags=["deliveries"], dependencies=[AdminOnly], responses=ADMIN
)


@router.get("", response_model=Page[DeliverySummary])
async def list_deliveries(
    session: SessionDep,
    contact: str | None = None,
    run: str | None = None,
    status: DeliveryStatus | None = None,
    channel: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    rows = await repo.list_deliveries(
        session,
        contact_id=contact,
        run_id=run,
        status=status,
        channel=channel,
        before=decode_cursor(cursor),
        limit=limit,
    )
    items, next_cursor = page(rows, limit)
    return {"items": [runlog.delivery_json(d) for d in items], "next_cursor": next_cursor}


@router.post(
    "/{delivery_id}/cancel", response_model=DeliveryCancelled, responses=problems(404, 409)
)
async def cancel_delivery(
    delivery_id: str, session: SessionDep, runtime: RuntimeDep
) -> dict[str, Any]:
    tz = runtime.catalog.policies.tz
    await cancel.cancel_delivery(session, delivery_id, now=runtime.clock(), tz=tz)
    return {"id": delivery_id, "status": DeliveryStatus.CANCELLED}
