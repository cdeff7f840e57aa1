"""Every request gets an id: the caller's ``X-Request-ID`` when it is a sane one, else a new
one; it is echoed in the response's ``X-Request-ID`` and carried by every log line the request
writes (see :mod:`smr.logs.context`)."""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smr.logs import request_scope

HEADER = b"x-request-id"
#: Letters, digits and ``._:-``, up to 128 characters: what proxies and tracers send, and
#: nothing that could forge a log line or carry a secret's length of junk.
SANE = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == HEADER:
            given = value.decode("latin-1")
            return given if SANE.fullmatch(given) else new_id()
    return new_id()


def new_id() -> str:
    return uuid.uuid4().hex


class RequestId:
    """Pure ASGI middleware (no task in between, so the route and the access log share it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)

        async def echo(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != HEADER]
                message["headers"] = [*headers, (HEADER, rid.encode())]
            await send(message)

        with request_scope(rid):
            await self.app(scope, receive, echo)
