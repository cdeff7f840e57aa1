"""Phones through the API: one contact per number however it is written; what is not a number
is a 422 that names the field."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.helpers import INGEST, auth, order_event


async def post(client: httpx.AsyncClient, event: dict[str, Any]) -> httpx.Response:
    return await client.post("/v1/events", json=event, headers=auth(INGEST))


async def lookup(client: httpx.AsyncClient, phone: str) -> httpx.Response:
    return await client.get("/v1/contacts", params={"phone": phone}, headers=auth())


async def test_a_fixed_line_written_two_ways_is_one_contact(client: httpx.AsyncClient) -> None:
    assert (await post(client, order_event("o-1", phone="021-12345678"))).status_code == 202
    assert (await post(client, order_event("o-2", phone="+86 21 1234 5678"))).status_code == 202

    found = await lookup(client, "(021) 1234 5678")

    assert found.status_code == 200
    assert found.json()["identities"] == {"phone": "+862112345678"}
    assert found.json()["stats"]["orders"] == 2


@pytest.mark.parametrize("asked", ["+86 138 0013 8000", "0086-138-0013-8000", "13800138000"])
async def test_a_mainland_mobile_is_found_however_it_is_asked(
    client: httpx.AsyncClient, asked: str
) -> None:
    assert (await post(client, order_event("o-1", phone="13800138000"))).status_code == 202

    found = await lookup(client, asked)

    assert found.status_code == 200
    assert found.json()["identities"] == {"phone": "13800138000"}


@pytest.mark.parametrize("phone", ["12345678901", "14155552671", "call me"])
async def test_an_event_whose_phone_is_no_number_is_refused_with_the_field(
    client: httpx.AsyncClient, phone: str
) -> None:
    response = await post(client, order_event("o-1", phone=phone))

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    (error,) = response.json()["errors"]
    assert error["path"] == "contact.phone"
    assert error["message"].startswith("not a")


async def test_a_number_from_elsewhere_is_stored_in_e164(client: httpx.AsyncClient) -> None:
    assert (await post(client, order_event("o-1", phone="+1 (415) 555-2671"))).status_code == 202

    found = await lookup(client, "+14155552671")

    assert found.json()["identities"] == {"phone": "+14155552671"}


@pytest.mark.parametrize("phone", ["12345678901", "call me", "1" * 100])
async def test_looking_up_what_is_no_number_is_a_422(client: httpx.AsyncClient, phone: str) -> None:
    response = await lookup(client, phone)

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["path"] for e in response.json()["errors"]] == ["query.phone"]
