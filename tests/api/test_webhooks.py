"""POST /v1/webhooks/{source} through the API on a real database: the generic source signed as a
shop would sign it, refusals that store nothing, retries that answer duplicate."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from smr.models import Contact, Delivery, Event, Run
from smr.runtime import Runtime, build_runtime
from tests.conftest import make_settings
from tests.helpers import FakeClock, auth, contact_of

SECRET = "whsec-generic-test"
YOUZAN_SECRET = "youzan-client-secret"
YOUZAN_SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks" / "youzan"
URL = "/v1/webhooks/generic"
PROBLEM = "application/problem+json"


@pytest.fixture
async def runtime(
    database_url: str, playbooks_dir: Path, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Runtime]:
    secrets = {"generic": SecretStr(SECRET), "youzan": SecretStr(YOUZAN_SECRET)}
    settings = make_settings(
        database_url, playbooks_dir, tmp_path / "data", webhook_secrets=secrets
    )
    rt = build_runtime(settings, clock=clock)
    yield rt
    await rt.aclose()


def order(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "order_id": "A1001",
        "status": "paid",
        "occurred_at": "2026-11-23T10:00:00+08:00",
        "customer": {
            "id": "cus-9",
            "phone": "138-0013-8000",
            "email": "w@example.com",
            "name": "小王",
        },
        "items": [
            {"sku": "FACE-WASH", "name": "洗面奶", "quantity": 2, "price": 59.0},
            {"sku": "TONER", "name": "爽肤水", "quantity": 1, "price": 80.0},
        ],
        "total": 198.0,
        "currency": "CNY",
    }
    return {**body, **changes}


def signature(body: bytes, timestamp: int, secret: str = SECRET) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


async def post(
    client: httpx.AsyncClient,
    clock: FakeClock,
    body: dict[str, Any] | bytes,
    *,
    age: float = 0,
    secret: str = SECRET,
    sign_body: bytes | None = None,
) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    stamp = int(clock.now.timestamp() - age)
    headers = {"X-SMR-Signature": signature(sign_body or raw, stamp, secret)}
    return await client.post(URL, content=raw, headers=headers)


async def counts(runtime: Runtime) -> list[int]:
    async with runtime.sessions() as session:
        return [
            int(await session.scalar(select(func.count()).select_from(m)) or 0)
            for m in (Event, Run, Delivery, Contact)
        ]


async def test_a_paid_order_becomes_an_order_event_for_its_customer(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    response = await post(client, clock, order())

    assert response.status_code == 200
    answer = response.json()
    assert answer["status"] == "accepted"
    (result,) = answer["events"]
    assert result["id"] == "A1001:paid"
    detail = (await client.get(f"/v1/events/{result['event_id']}", headers=auth())).json()
    assert detail["type"] == "order.paid"
    assert detail["data"]["skus"] == ["FACE-WASH", "TONER"]
    assert detail["data"]["total"] == 198.0
    assert detail["data"]["items"][0] == {
        "sku": "FACE-WASH",
        "name": "洗面奶",
        "quantity": 2,
        "price": 59.0,
    }
    assert detail["data"]["email"] == "w@example.com"
    assert [e["playbook"] for e in detail["evaluations"] if e["outcome"] == "started"] == [
        "order-thank-you"
    ]
    contact_id = await contact_of(client, result)
    contact = (await client.get(f"/v1/contacts/{contact_id}", headers=auth())).json()
    assert contact["identities"] == {"phone": "13800138000", "shop_customer_id": "cus-9"}
    assert contact["stats"]["orders"] == 1


async def test_a_retry_answers_duplicate_and_creates_nothing(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    await post(client, clock, order())
    before = await counts(runtime)
    clock.advance(seconds=30)

    again = await post(client, clock, order())

    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert await counts(runtime) == before


async def test_a_refund_exits_and_counts_against_the_customer(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    await post(client, clock, order())
    refund = order(status="refunded", refund_id="R1", total=59.0, items=[order()["items"][0]])

    first = await post(client, clock, refund)
    second = await post(client, clock, order(status="refunded", refund_id="R2", total=80.0))

    assert [r.json()["events"][0]["id"] for r in (first, second)] == [
        "A1001:refunded:R1",
        "A1001:refunded:R2",
    ]
    contact_id = await contact_of(client, first.json()["events"][0])
    contact = (await client.get(f"/v1/contacts/{contact_id}", headers=auth())).json()
    assert float(contact["stats"]["total_spent"]) == pytest.approx(198.0 - 59.0 - 80.0)


@pytest.mark.parametrize(
    ("case", "kwargs"),
    [
        ("tampered body", {"sign_body": b'{"order_id": "A1001"}'}),
        ("wrong secret", {"secret": "not-the-secret"}),
        ("six minutes old", {"age": 360}),
        ("six minutes ahead", {"age": -360}),
    ],
)
async def test_a_bad_signature_is_401_and_stores_nothing(
    client: httpx.AsyncClient,
    runtime: Runtime,
    clock: FakeClock,
    case: str,
    kwargs: dict[str, Any],
) -> None:
    response = await post(client, clock, order(), **kwargs)

    assert response.status_code == 401, case
    assert response.headers["content-type"] == PROBLEM
    assert await counts(runtime) == [0, 0, 0, 0]


async def test_four_minutes_old_is_still_in_tolerance(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    response = await post(client, clock, order(), age=240)

    assert response.status_code == 200


async def test_a_missing_signature_is_401(client: httpx.AsyncClient, runtime: Runtime) -> None:
    response = await client.post(URL, json=order())

    assert response.status_code == 401
    assert "X-SMR-Signature" in response.json()["detail"]
    assert await counts(runtime) == [0, 0, 0, 0]


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (b"{not json", "(body)"),
        (order(total="lots"), "total"),
        (order(customer={"name": "无名"}), "customer"),
        (order(customer={"phone": "call me"}), "customer.phone"),
        (order(items=[{"name": "无 SKU", "quantity": 1}]), "items[0].sku"),
    ],
    ids=["not-json", "bad-total", "no-identity", "bad-phone", "item-without-sku"],
)
async def test_an_unreadable_body_is_422_with_the_field_path(
    client: httpx.AsyncClient,
    runtime: Runtime,
    clock: FakeClock,
    body: dict[str, Any] | bytes,
    path: str,
) -> None:
    response = await post(client, clock, body)

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert path in [e["path"] for e in response.json()["errors"]]
    assert await counts(runtime) == [0, 0, 0, 0]


async def test_an_unknown_source_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/webhooks/nosuchshop", content=b"{}")

    assert response.status_code == 404
    assert "generic" in response.json()["detail"]


async def test_a_source_without_its_secret_is_404_naming_the_setting(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/v1/webhooks/shopify", content=b"{}")

    assert response.status_code == 404
    assert "SMR_WEBHOOK_SECRETS__SHOPIFY" in response.json()["detail"]


async def test_a_youzan_push_is_answered_as_youzan_counts_it_delivered(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    body = (YOUZAN_SAMPLES / "trade_buyer_pay.json").read_bytes()
    client_id = json.loads(body)["client_id"]
    sign = hashlib.md5(client_id.encode() + body + YOUZAN_SECRET.encode()).hexdigest()  # noqa: S324
    headers = {"Event-Sign": sign, "Client-Id": client_id, "Event-Type": "trade_TradeBuyerPay"}

    first = await client.post("/v1/webhooks/youzan", content=body, headers=headers)
    again = await client.post("/v1/webhooks/youzan", content=body, headers=headers)

    assert [r.status_code for r in (first, again)] == [200, 200]
    assert [r.json()["status"] for r in (first, again)] == ["accepted", "duplicate"]
    # Youzan retries a push unless the answer says success.
    assert all((r.json()["code"], r.json()["msg"]) == (0, "success") for r in (first, again))
    assert (await counts(runtime))[0] == 1
