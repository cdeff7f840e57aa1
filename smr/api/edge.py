"""The edge guard for URLs: a NUL (``%00``) in a path or a query string is refused with 422
before any route runs. PostgreSQL cannot compare a NUL, so any route that looks a path or query
value up (``GET /v1/events/%00``, ``?wecom_userid=%00``) would otherwise answer 500.

Bodies pass their own guard, ``smr.edge``; percent-decoding never yields a lone surrogate
(invalid UTF-8 decodes to U+FFFD), so a NUL is all a URL can carry that the database cannot.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from smr.api.errors import problem
from smr.edge import printable


class RefuseNul:
    """ASGI middleware: 422 problem+json for a URL that carries a NUL."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        where = nul_in_url(scope) if scope["type"] == "http" else None
        if where is None:
            await self.app(scope, receive, send)
            return
        errors = [{"path": where, "message": "contains a NUL character (%00)"}]
        response = problem(422, "Invalid input", "The URL carries a NUL character.", errors=errors)
        await response(scope, receive, send)


def nul_in_url(scope: Scope) -> str | None:
    """Where the request's URL carries a NUL: ``path``, ``query.<name>``, or None."""
    if "\x00" in scope["path"]:
        return "path"
    query: bytes = scope.get("query_string", b"")
    if b"%00" not in query and b"\x00" not in query:
        return None
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return f"query.{printable(name)}"
    return "query"
