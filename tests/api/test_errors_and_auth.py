"""Auth and bad input: clear problem+json, never a 500, never a partial row."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from smr.models import Contact, Event
from smr.runtime import Runtime
from tests.helpers import INGEST, auth, order_event


async def rows(runtime: Runtime) -> tuple[int, int]:
    async with runtime.sessions() as session:
        events = await session.scalar(select(func.count()).select_from(Event))
        contacts = await session.scalar(select(func.count()).select_from(Contact))
    return int(events or 0), int(contacts or 0)


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer nope"}, 401), ({"Authorization": "Basic x"}, 401)],
)
async def test_missing_or_unknown_token_is_401(
    client: httpx.AsyncClient, headers: dict[str, str], status: int
) -> None:
    response = await client.post("/v1/events", json=order_event("o-1"), headers=headers)

    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status


async def test_ingest_token_on_admin_route_is_403(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/runs", headers=auth(INGEST))

    assert response.status_code == 403
    assert response.json()["title"] == "Forbidden"


async def test_malformed_json_is_422_problem(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/events",
        content=b'{"id": "x",',
        headers={**auth(INGEST), "content-type": "application/json"},
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["path"] == "(body)"


async def test_wrong_types_name_the_field(client: httpx.AsyncClient, runtime: Runtime) -> None:
    bad = order_event("o-2")
    bad["data"]["total"] = "lots"
    batch = {"events": [order_event("o-1"), bad]}

    response = await client.post("/v1/events", json=batch, headers=auth(INGEST))

    assert response.status_code == 422
    assert {"path": "events[1].data.total", "message": "Input should be a valid decimal"} in (
        response.json()["errors"]
    )
    assert await rows(runtime) == (0, 0)


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda e: e.pop("type"), "type"),
        (lambda e: e.update(type="Order Paid"), "type"),
        (lambda e: e.update(occurred_at="2026-11-23T10:00:00"), "occurred_at"),
        (lambda e: e.update(contact={"name": "nobody"}), "contact"),
        (lambda e: e.update(extra=1), "extra"),
    ],
)
async def test_each_bad_field_is_reported_with_its_path(
    client: httpx.AsyncClient, mutate: object, path: str
) -> None:
    event = order_event("o-1")
    assert callable(mutate)
    mutate(event)

    response = await client.post("/v1/events", json=event, headers=auth(INGEST))

    assert response.status_code == 422
    assert path in [e["path"] for e in response.json()["errors"]]


async def test_body_over_one_mebibyte_is_413(client: httpx.AsyncClient, runtime: Runtime) -> None:
    event = order_event("o-1", note="x" * (1024 * 1024))

    response = await client.post("/v1/events", json=event, headers=auth(INGEST))

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert await rows(runtime) == (0, 0)


async def test_batch_over_a_thousand_is_refused(client: httpx.AsyncClient) -> None:
    batch = {"events": [order_event(f"o-{i}", phone=f"1380000{i:04d}") for i in range(1001)]}

    response = await client.post("/v1/events", json=batch, headers=auth(INGEST))

    assert response.status_code == 422
    assert response.json()["errors"][0]["path"] == "events"


@pytest.mark.parametrize(
    "path", ["/v1/events/ev_missing", "/v1/runs/run_missing", "/v1/contacts/ct_missing"]
)
async def test_unknown_ids_are_404_problems(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path, headers=auth())

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_bad_cursor_and_limit_are_422(client: httpx.AsyncClient) -> None:
    bad_cursor = await client.get("/v1/runs", params={"cursor": "garbage"}, headers=auth())
    bad_limit = await client.get("/v1/deliveries", params={"limit": 5000}, headers=auth())

    assert bad_cursor.status_code == 422
    assert bad_limit.status_code == 422
    assert bad_limit.json()["errors"][0]["path"] == "query.limit"
