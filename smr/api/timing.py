"""How long ingest takes to answer (``smr_ingest_seconds``): from a request's arrival to the
start of its answer, for every way events come in. Vendors retry a slow answer (WeCom gives a
callback 5 s), so this is the latency that matters to them, errors included."""

from __future__ import annotations

import time

from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smr.telemetry import Endpoint


def endpoint_of(scope: Scope) -> Endpoint | None:
    """The ingest endpoint a request goes to; None for any other request."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    path: str = scope["path"]
    if path.rstrip("/") == "/v1/events":
        return Endpoint.EVENTS
    if path.startswith("/v1/webhooks/"):
        return Endpoint.WEBHOOKS
    if path.rstrip("/") == "/v1/wecom/callback":
        return Endpoint.WECOM
    return None


class IngestTiming:
    """ASGI middleware observing ``histogram`` (labelled by ``Endpoint``) per ingest request."""

    def __init__(self, app: ASGIApp, *, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = endpoint_of(scope)
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        timer = self.histogram.labels(endpoint)
        started = time.perf_counter()
        answered = False

        async def timed(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start" and not answered:
                answered = True
                timer.observe(time.perf_counter() - started)
            await send(message)

        try:
            await self.app(scope, receive, timed)
        finally:
            if not answered:  # the app raised before answering; the server answers 500
                timer.observe(time.perf_counter() - started)
