"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from smr import __version__
from smr.api import errors, openapi
from smr.api.edge import RefuseNul
from smr.api.request_id import RequestId
from smr.api.routes import (
    archive,
    channel_codes,
    contacts,
    deliveries,
    events,
    group_welcome,
    groups,
    health,
    moments,
    outbox,
    playbooks,
    runs,
    segments,
    webhooks,
    wecom,
)
from smr.api.routes import simulate as simulate_routes
from smr.api.timing import IngestTiming
from smr.runtime import Runtime, settle_heap
from smr.scheduler import Ticker

DESCRIPTION = (
    "SMR, the Social Marketing Robot. Send `Authorization: Bearer <token>`: an ingest token "
    "posts events, an admin token does everything. Every error is `application/problem+json` "
    "(RFC 9457), with the path of each field at fault."
)


def create_app(runtime: Runtime, *, with_ticker: bool = False) -> FastAPI:
    """The API over ``runtime``; ``with_ticker`` also runs the dispatcher in this process."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        settle_heap()
        ticker = Ticker(runtime) if with_ticker else None
        if ticker:
            ticker.start()
        try:
            yield
        finally:
            if ticker:
                await ticker.stop()
            await runtime.aclose()

    app = FastAPI(
        title="SMR",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served offline by smr.api.openapi
        redoc_url=None,
        generate_unique_id_function=openapi.operation_id,
    )
    app.state.runtime = runtime
    errors.install(app)
    app.add_middleware(RefuseNul)
    app.add_middleware(IngestTiming, histogram=runtime.telemetry.ingest)
    app.add_middleware(RequestId)  # outermost: every answer and log line carries the id
    for module in (events, runs, deliveries, contacts, playbooks, outbox, health, wecom, webhooks):
        app.include_router(module.router)
    app.include_router(groups.router)
    app.include_router(archive.router)
    app.include_router(channel_codes.router)
    app.include_router(group_welcome.router)
    app.include_router(moments.router)
    app.include_router(segments.router)
    app.include_router(simulate_routes.router)
    openapi.install(app)
    return app
