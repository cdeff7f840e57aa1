"""The baseline for ``bench/ingest.py``: the least an ingest endpoint can do on PostgreSQL.

* ``POST /events`` reads the body, parses it as JSON and runs exactly one asyncpg ``INSERT``
  through a pool, then answers 202 with the row's id;
* ``POST /events/batch`` reads ``{"events": [...]}`` and inserts all of them with ONE asyncpg
  statement (``INSERT ... SELECT FROM unnest(...)``), then answers 202 with one result per
  event, as SMR answers a batch.

Run with uvicorn; configured by environment:

* ``BENCH_DSN``: asyncpg DSN of the database holding the ``bare_events`` table.
* ``BENCH_POOL_MIN`` / ``BENCH_POOL_MAX``: pool bounds (default 10 / 20; SMR keeps up to 20).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

INSERT = "INSERT INTO bare_events (key, body) VALUES ($1, $2::jsonb) RETURNING id"
INSERT_MANY = (
    "INSERT INTO bare_events (key, body) "
    "SELECT * FROM unnest($1::text[], $2::jsonb[]) RETURNING key, id"
)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(
        os.environ["BENCH_DSN"],
        min_size=int(os.environ.get("BENCH_POOL_MIN", "10")),
        max_size=int(os.environ.get("BENCH_POOL_MAX", "20")),
    )
    try:
        yield
    finally:
        await app.state.pool.close()


app = FastAPI(title="bare ingest", lifespan=lifespan)


@app.get("/readyz")
async def readyz(request: Request) -> dict[str, Any]:
    await request.app.state.pool.fetchval("SELECT 1")
    return {"status": "ready"}


@app.post("/events")
async def post_event(request: Request) -> JSONResponse:
    raw = await request.body()
    event = json.loads(raw)
    key = str(event["id"])
    row_id = await request.app.state.pool.fetchval(INSERT, key, raw.decode())
    answer = {"id": key, "status": "accepted", "event_id": str(row_id)}
    return JSONResponse(answer, status_code=202)


@app.post("/events/batch")
async def post_batch(request: Request) -> JSONResponse:
    events = json.loads(await request.body())["events"]
    keys = [str(event["id"]) for event in events]
    bodies = [json.dumps(event, ensure_ascii=False, separators=(",", ":")) for event in events]
    rows = await request.app.state.pool.fetch(INSERT_MANY, keys, bodies)
    results = [{"id": r["key"], "status": "accepted", "event_id": str(r["id"])} for r in rows]
    return JSONResponse({"results": results}, status_code=202)
