"""Request dependencies: the runtime, a unit-of-work session, bearer auth, bounded JSON bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from smr import edge
from smr.db import unit_of_work
from smr.errors import Forbidden, PayloadTooLarge, Unauthorized
from smr.runtime import Runtime
from smr.tokens import Role

# The dependencies are coroutines, even those that never await: FastAPI runs a plain ``def``
# dependency in a worker thread, a hop that costs more than the work they do.


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: committed when the handler returns, rolled back on error."""
    async with unit_of_work(runtime.sessions) as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


def _role(request: Request, runtime: Runtime) -> Role:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("Send 'Authorization: Bearer <token>'.")
    role = runtime.tokens.role_of(token.strip())
    if role is None:
        raise Unauthorized("Unknown token.")
    return role


async def require_admin(request: Request, runtime: RuntimeDep) -> None:
    if _role(request, runtime) != "admin":
        raise Forbidden("This route needs an admin token.")


async def ingest_request(request: Request) -> tuple[Runtime, Any]:
    """The runtime and the JSON body of a request with an ingest or admin token (admin tokens
    may post events too), read without FastAPI dependencies: the ingest route runs for every
    event, and FastAPI would resolve its dependencies one by one."""
    runtime: Runtime = request.app.state.runtime
    _role(request, runtime)
    return runtime, parse_json(await read_body(request, runtime))


async def read_body(request: Request, runtime: RuntimeDep) -> bytes:
    """The raw body, refusing bodies over the configured size before reading them."""
    limit = runtime.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The body is over {limit} bytes.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"The body is over {limit} bytes.")
    return bytes(body)


RawBody = Annotated[bytes, Depends(read_body)]


async def read_json(body: RawBody) -> Any:
    """The body parsed as JSON (see ``read_body`` for the size limit)."""
    return parse_json(body)


def parse_json(body: bytes) -> Any:
    """The body as JSON within the edge bounds (see ``smr.edge``): InvalidInput otherwise."""
    return edge.load_json(body)


AdminOnly = Depends(require_admin)
JsonBody = Annotated[Any, Depends(read_json)]
