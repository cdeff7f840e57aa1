"""Liveness, readiness and Prometheus metrics (no token: for load balancers and scrapers)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from smr.api.deps import RuntimeDep, SessionDep
from smr.api.errors import problem
from smr.api.models import Alive, Ready
from smr.api.openapi import problems
from smr.services.metrics import SnapshotCollector, read_snapshot
from smr.telemetry import exposition

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Alive)
async def healthz() -> dict[str, Any]:
    return {"status": "ok"}


@router.get("/readyz", response_model=None, responses={200: {"model": Ready}, **problems(503)})
async def readyz(runtime: RuntimeDep) -> dict[str, Any] | JSONResponse:
    try:
        async with runtime.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError) as exc:
        return problem(503, "Not ready", f"database unreachable: {type(exc).__name__}")
    return {"status": "ready", "playbooks": len(runtime.catalog.result.playbooks)}


@router.get("/metrics", response_class=PlainTextResponse, responses=problems(503))
async def metrics(request: Request, runtime: RuntimeDep, session: SessionDep) -> Response:
    snapshot = await read_snapshot(session, runtime.catalog, now=runtime.clock())
    body, content_type = exposition(
        SnapshotCollector(snapshot),
        runtime.telemetry.registry,
        accept=request.headers.get("accept", ""),
    )
    return Response(body, media_type=content_type)
