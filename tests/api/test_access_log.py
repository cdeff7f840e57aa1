"""The access log of a real uvicorn server in front of SMR, configured as ``smr serve`` does:
one JSON object a line, the request id (echoed to the caller) and the event it accepted on the
request's line, no secret and no whole phone number."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn

from smr import logs
from smr.api.app import create_app
from smr.runtime import Runtime
from tests.helpers import INGEST, auth, order_event


@pytest.fixture
async def served(runtime: Runtime) -> AsyncIterator[tuple[httpx.AsyncClient, io.StringIO]]:
    """SMR behind uvicorn on a port of its own, logging JSON lines into the stream yielded."""
    stream = io.StringIO()
    handler = logs.handler("json", stream)
    logging.getLogger().addHandler(handler)
    listening = socket.create_server(("127.0.0.1", 0))  # bound before the server runs
    config = uvicorn.Config(create_app(runtime), log_config=None, log_level="info", lifespan="off")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[listening]))
    port = listening.getsockname()[1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            yield client, stream
    finally:
        server.should_exit = True
        await serving
        logging.getLogger().removeHandler(handler)


def access_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    parsed = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [line for line in parsed if line["logger"] == "uvicorn.access"]


async def test_access_lines_carry_ids_and_no_secret_or_phone(
    served: tuple[httpx.AsyncClient, io.StringIO], runtime: Runtime
) -> None:
    client, stream = served
    headers = {**auth(INGEST), "X-Request-ID": "shop-req-1"}
    posted = await client.post("/v1/events", json=order_event("o-1"), headers=headers)
    await runtime.process_pending()  # no background processor here (lifespan off)
    asked = await client.get("/v1/contacts", params={"phone": "13800000000"}, headers=auth())
    pushed = await client.post("/v1/webhooks/sms/aliyun?token=s3cr3t-t0ken", json=[])

    assert posted.status_code == 202
    assert posted.headers["x-request-id"] == "shop-req-1"
    assert asked.status_code == 200
    assert len(asked.headers["x-request-id"]) == 32  # none given: one was made
    assert pushed.status_code == 404  # no secret configured; logged all the same
    post, get, push = access_lines(stream)
    assert post["request_id"] == "shop-req-1"
    assert post["event_id"] == posted.json()["event_id"]
    assert post["http"]["path"] == "/v1/events"
    assert get["request_id"] == asked.headers["x-request-id"]
    assert get["http"]["path"] == "/v1/contacts?phone=138****0000"
    assert push["http"]["path"] == "/v1/webhooks/sms/aliyun?token=[redacted]"
    assert "s3cr3t-t0ken" not in stream.getvalue()
    assert "13800000000" not in stream.getvalue()


@pytest.mark.parametrize("given", ["", "a b", "x" * 129, "id\nforged line"])
async def test_an_insane_request_id_is_replaced(
    served: tuple[httpx.AsyncClient, io.StringIO], given: str
) -> None:
    client, _ = served
    response = await client.get("/healthz", headers={"X-Request-ID": given.replace("\n", " ")})

    assert response.headers["x-request-id"] != given.replace("\n", " ")
    assert len(response.headers["x-request-id"]) == 32
