"""POST /v1/wecom/archive: what the customer's archive gateway pushes (会话内容存档) becomes
chat.message events, signed, bounded and idempotent; keyword playbooks answer the customer's
words and not the staff's."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from smr.config import WeComSettings
from smr.inbound.archive import sign
from smr.models import Contact, Event
from smr.runtime import Runtime, build_runtime
from tests.conftest import make_settings
from tests.helpers import FakeClock, auth, contact_of

SECRET = "archive-gateway-secret"
STAFF, CUSTOMER = "XuJinSheng", "wmAJ2GCAAAXtWyujaWJHDDGi0mACAAAA"
PROBLEM = "application/problem+json"
URL = "/v1/wecom/archive"


@pytest.fixture
async def runtime(
    database_url: str, playbooks_dir: Path, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Runtime]:
    wecom = WeComSettings(archive_secret=SecretStr(SECRET))
    settings = make_settings(database_url, playbooks_dir, tmp_path / "data", wecom=wecom)
    rt = build_runtime(settings, clock=clock)
    yield rt
    await rt.aclose()


def message(msgid: str, says: str = "这个多少钱？价格", **fields: Any) -> dict[str, Any]:
    sample = {
        "msgid": msgid,
        "action": "send",
        "from": CUSTOMER,
        "tolist": [STAFF],
        "roomid": "",
        "msgtime": 1_795_402_800_123,  # 2026-11-23T03:00:00.123Z
        "msgtype": "text",
        "text": {"content": says},
    }
    return {**sample, **fields}


def signed(body: bytes, clock: FakeClock, *, secret: str = SECRET, late: int = 0) -> dict[str, str]:
    stamp = int(clock.now.timestamp()) - late
    return {"X-SMR-Timestamp": str(stamp), "X-SMR-Signature": sign(secret, body, stamp)}


async def push(
    client: httpx.AsyncClient, clock: FakeClock, *messages: dict[str, Any], **how: Any
) -> httpx.Response:
    body = json.dumps({"messages": list(messages)}, ensure_ascii=False).encode()
    return await client.post(URL, content=body, headers=signed(body, clock, **how))


async def stored(runtime: Runtime) -> list[tuple[str, str, str, dict[str, Any]]]:
    async with runtime.sessions() as session:
        rows = await session.scalars(select(Event).order_by(Event.occurred_at, Event.key))
        return [(e.source, e.key, e.type, e.data) for e in rows]


async def contacts(runtime: Runtime) -> int:
    async with runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Contact)) or 0)


async def detail(client: httpx.AsyncClient, event_id: str) -> dict[str, Any]:
    found = await client.get(f"/v1/events/{event_id}", headers=auth())
    assert found.status_code == 200, found.text
    answer: dict[str, Any] = found.json()
    return answer


# Authentication.


async def test_a_signed_push_is_accepted(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    response = await push(client, clock, message("m-1"))

    assert response.status_code == 202, response.text
    answer = response.json()
    assert (answer["accepted"], answer["duplicate"], answer["ignored"]) == (1, 0, 0)
    [result] = answer["results"]
    assert (result["msgid"], result["status"], result["id"]) == ("m-1", "accepted", "archive:m-1")
    [(source, key, type_, data)] = await stored(runtime)
    assert (source, key, type_) == ("wecom_archive", "archive:m-1", "chat.message")
    assert data["speaker"] == "customer"
    customer = await client.get("/v1/contacts", params={"wecom_userid": CUSTOMER}, headers=auth())
    assert customer.json()["id"] == await contact_of(client, result)


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ({"secret": "not-the-secret"}, "does not verify"),
        ({"late": 301}, "more than 5 minutes"),
        ({"late": -301}, "more than 5 minutes"),
    ],
)
async def test_a_wrongly_signed_push_is_refused_and_stores_nothing(
    client: httpx.AsyncClient,
    runtime: Runtime,
    clock: FakeClock,
    how: dict[str, Any],
    expected: str,
) -> None:
    response = await push(client, clock, message("m-1"), **how)

    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert expected in response.json()["detail"]
    assert await stored(runtime) == []


@pytest.mark.parametrize("drop", ["X-SMR-Timestamp", "X-SMR-Signature"])
async def test_a_push_without_its_headers_is_refused(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock, drop: str
) -> None:
    body = json.dumps({"messages": [message("m-1")]}).encode()
    headers = {k: v for k, v in signed(body, clock).items() if k != drop}

    response = await client.post(URL, content=body, headers=headers)

    assert response.status_code == 401
    assert "headers are required" in response.json()["detail"]
    assert await stored(runtime) == []


async def test_without_a_secret_the_route_is_not_configured(
    database_url: str, playbooks_dir: Path, tmp_path: Path, clock: FakeClock
) -> None:
    from smr.api.app import create_app

    rt = build_runtime(make_settings(database_url, playbooks_dir, tmp_path / "d"), clock=clock)
    transport = httpx.ASGITransport(app=create_app(rt))
    async with httpx.AsyncClient(transport=transport, base_url="http://smr.test") as client:
        response = await push(client, clock, message("m-1"))
    await rt.aclose()

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert "SMR_WECOM__ARCHIVE_SECRET" in response.json()["detail"]


# What messages become.


async def test_each_message_is_answered_accepted_duplicate_or_ignored(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    staff = message("m-2", "您好，价格是 99 元", **{"from": STAFF, "tolist": [CUSTOMER]})
    group = message("m-3", "群里问下价格", roomid="wr-1", tolist=[STAFF, CUSTOMER])
    group["from"] = "wmOther"
    staff_in_group = message("m-4", "大家好", roomid="wr-1", **{"from": STAFF})
    recall = {"msgid": "m-5", "action": "recall", "msgtype": "revoke", "revoke": {}}
    first = await push(client, clock, message("m-1"), staff, group, staff_in_group, recall)

    assert first.status_code == 202, first.text
    assert [(r["msgid"], r["status"], r.get("reason")) for r in first.json()["results"]] == [
        ("m-1", "accepted", None),
        ("m-2", "accepted", None),
        ("m-3", "accepted", None),
        ("m-4", "ignored", "a staff message in a group speaks to no single customer"),
        ("m-5", "ignored", "action recall: acknowledged, not acted on"),
    ]
    events = {key: data for _, key, _, data in await stored(runtime)}
    assert events["archive:m-2"]["speaker"] == "staff"
    assert events["archive:m-2"]["staff"] == STAFF
    assert (events["archive:m-3"]["chat"], events["archive:m-3"]["chat_id"]) == ("group", "wr-1")
    # The staff's message is in the customer's conversation: both land on one contact; the
    # other customer's group message on another.
    results = first.json()["results"]
    contacts = [await contact_of(client, r) for r in results[:3]]
    assert contacts[0] == contacts[1] != contacts[2]

    again = await push(client, clock, message("m-1"), staff, message("m-6"))

    assert [(r["msgid"], r["status"]) for r in again.json()["results"]] == [
        ("m-1", "duplicate"),
        ("m-2", "duplicate"),
        ("m-6", "accepted"),
    ]
    assert again.json()["results"][0]["event_id"] == results[0]["event_id"]
    assert len(await stored(runtime)) == 4


async def test_keyword_playbooks_answer_the_customer_and_not_the_staff(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    staff = message("m-2", "您好，价格是 99 元", **{"from": STAFF, "tolist": [CUSTOMER]})
    results = (await push(client, clock, message("m-1"), staff)).json()["results"]

    asked = await detail(client, results[0]["event_id"])
    answered = await detail(client, results[1]["event_id"])

    assert [r["playbook"] for r in asked["runs"]] == ["keyword-price"]
    assert answered["runs"] == []
    [evaluation] = [e for e in answered["evaluations"] if e["playbook"] == "keyword-price"]
    assert evaluation["outcome"] == "keyword_not_found"
    assert "not the staff" in evaluation["detail"]


# Bad bodies.


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (lambda: {"messages": [message(f"m-{i}") for i in range(1001)]}, "messages"),
        (
            lambda: {"messages": [message("m-1"), message("m-2", msgtime="now")]},
            "messages[1].msgtime",
        ),
        (
            lambda: {"messages": [message("m-1"), {"msgid": "m-2", "action": "edit"}]},
            "messages[1].action",
        ),
        (lambda: {"messages": [message("m-1", text=None)]}, "messages[0].text"),
        (lambda: {"events": []}, "messages"),
        (lambda: [message("m-1")], "(body)"),
    ],
)
async def test_a_malformed_push_is_422_with_the_path_and_stores_nothing(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock, body: Any, path: str
) -> None:
    raw = json.dumps(body()).encode()

    response = await client.post(URL, content=raw, headers=signed(raw, clock))

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert path in [e["path"] for e in response.json()["errors"]]
    assert await stored(runtime) == []
    assert await contacts(runtime) == 0


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        (b'{"messages": [', "(body)"),
        (b'{"messages": [{"msgid": "a\\u0000b", "action": "switch"}]}', "messages[0].msgid"),
    ],
)
async def test_a_body_past_the_edge_bounds_is_422(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock, raw: bytes, path: str
) -> None:
    response = await client.post(URL, content=raw, headers=signed(raw, clock))

    assert response.status_code == 422
    assert [e["path"] for e in response.json()["errors"]] == [path]
    assert await stored(runtime) == []
