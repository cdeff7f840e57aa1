"""``smr worker``: the event processor and the ticker (no API), and with a health port a small
HTTP server beside them for a process manager or Kubernetes to probe:

- ``GET /healthz``: 200 while the ticker finishes ticks (failed ones too: a worker waiting for
  its database is alive), 503 (problem+json) when it stopped or no tick has finished for
  ``SMR_WORKER_HEALTH_STALE_SECONDS``: a hung worker, to be restarted;
- ``GET /metrics``: what this worker measured itself (claims, vendor calls, sends, ticks). The
  counts read from the database are the API's ``/metrics``, the same whichever process serves
  them.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from smr.api.errors import problem
from smr.runtime import Runtime, settle_heap
from smr.scheduler import Ticker
from smr.telemetry import exposition


@asynccontextmanager
async def working(runtime: Runtime) -> AsyncIterator[Ticker]:
    """The runtime started and its ticker ticking; on the way out, the tick in progress
    finishes before the runtime closes."""
    await runtime.start()
    settle_heap()
    ticker = Ticker(runtime)
    ticker.start()
    try:
        yield ticker
    finally:
        await ticker.stop()
        await runtime.aclose()


async def work_until_signalled(runtime: Runtime) -> None:
    """Tick until SIGINT or SIGTERM (the worker without a health port)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with working(runtime):
        await stop.wait()


def health_app(runtime: Runtime) -> Starlette:
    """``/healthz`` and ``/metrics`` of a worker; its lifespan runs the ticker (``working``),
    so the server that serves it (uvicorn, which handles the signals) runs the worker."""
    stale = timedelta(seconds=runtime.settings.worker_health_stale_seconds)

    async def healthz(_request: Request) -> Response:
        state = runtime.telemetry.heartbeat.liveness(runtime.clock(), stale=stale)
        seen = {"seconds_since_tick": state.seconds_since_tick, "last_tick_ok": state.last_tick_ok}
        if not state.alive:
            return problem(503, "Not alive", state.detail, **seen)
        return JSONResponse({"status": "ok", **seen})

    async def metrics(request: Request) -> Response:
        accept = request.headers.get("accept", "")
        body, content_type = exposition(runtime.telemetry.registry, accept=accept)
        return Response(body, media_type=content_type)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with working(runtime):
            yield

    routes = [Route("/healthz", healthz), Route("/metrics", metrics)]
    return Starlette(routes=routes, lifespan=lifespan)
