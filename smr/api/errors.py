"""Every error leaves as application/problem+json (RFC 9457), with field paths where it has them."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote, unquote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from smr.db import DATABASE_ERRORS, describe, is_unavailable
from smr.errors import (
    DatabaseUnavailable,
    InvalidInput,
    Merged,
    SmrError,
    Unauthorized,
    field_errors,
    field_path,
)

PROBLEM = "application/problem+json"
log = logging.getLogger(__name__)


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def invalid(exc: ValidationError) -> InvalidInput:
    return InvalidInput("The request body does not validate.", errors=field_errors(exc.errors()))


async def _smr_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SmrError)
    extra = {"errors": exc.errors} if exc.errors else {}
    response = problem(exc.status, exc.title, exc.detail, **extra)
    if exc.retry_after is not None:
        response.headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, Unauthorized):
        response.headers["WWW-Authenticate"] = challenge(request)
    if isinstance(exc, Merged):
        response.headers["Location"] = _moved(request, exc)
    return response


def _moved(request: Request, exc: Merged) -> str:
    """The request's path and query, the merged contact's id segment now the survivor's."""
    segments = request.url.path.split("/")
    at = [unquote(segment) for segment in segments].index(exc.contact_id)
    segments[at] = quote(exc.into, safe="")
    query = f"?{request.url.query}" if request.url.query else ""
    return "/".join(segments) + query


def challenge(request: Request) -> str:
    """The ``WWW-Authenticate`` of a 401 (RFC 6750 §3): a bearer token sent but not known is
    ``invalid_token``; with none sent, the challenge names no error."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    sent = scheme.lower() == "bearer" and token.strip()
    return 'Bearer realm="smr"' + (', error="invalid_token"' if sent else "")


async def _request_validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "path": field_path(e["loc"][1:] if e["loc"][0] == "body" else e["loc"]),
            "message": e["msg"],
        }
        for e in exc.errors()
    ]
    return problem(422, "Invalid input", "The request does not validate.", errors=errors)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return problem(exc.status_code, str(exc.detail), str(exc.detail))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A 500, except for a database that cannot be reached: that is the moment's fault, not
    the request's, and answers 503 with Retry-After and one line in the log."""
    if is_unavailable(exc):
        log.warning("database unavailable, answered 503: %s", describe(exc))
        return await _smr_error(request, DatabaseUnavailable())
    log.exception("unhandled error", exc_info=exc)
    return problem(500, "Internal error", "Something went wrong; nothing was stored.")


def install(app: FastAPI) -> None:
    app.add_exception_handler(Exception, _unexpected)
    app.add_exception_handler(SmrError, _smr_error)
    # Database errors are handled here rather than by the catch-all above, which logs a
    # traceback per request and drops the client's connection.
    for database_error in DATABASE_ERRORS:
        app.add_exception_handler(database_error, _unexpected)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_error)
