"""The edge guard and the documented bounds, on every test database: what the database, the
serializer or Python cannot hold is refused with 422 and a field path, before anything is
stored; a refused value never poisons a later request."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select, update

from smr.config import WeComSettings
from smr.inbound.webhooks import generic, shopify
from smr.models import Contact, Event
from smr.runtime import Runtime, build_runtime
from tests.conftest import make_settings
from tests.helpers import ADMIN, INGEST, FakeClock, auth, contact_of, order_event
from tests.unit.inbound import wecom_support as v

SECRET = "edge-secret"
SOURCES = ("generic", "shopify", "youzan", "sms_aliyun", "sms_tencent")
WEBHOOKS = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
PROBLEM = "application/problem+json"
SPOT = "__HOSTILE__"
#: Raw JSON that each stands where SPOT's string stood.
HOSTILE = {
    "nul": b'"a\\u0000b"',
    "surrogate": b'"a\\ud800b"',
    # the same surrogate encoded as UTF-8, which json.loads(bytes) decodes into the string
    "utf-8 surrogate": b'"a\xed\xa0\x80b"',
    "deep": b"[" * 1000 + b"]" * 1000,
    "huge integer": b"1" * 5000,
}


@pytest.fixture
async def runtime(
    database_url: str, playbooks_dir: Path, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Runtime]:
    secrets = {source: SecretStr(SECRET) for source in SOURCES}
    wecom = WeComSettings(corp_id=v.CORP_ID, token=SecretStr(v.TOKEN), aes_key=SecretStr(v.AES_KEY))
    data = tmp_path / "data"
    settings = make_settings(
        database_url, playbooks_dir, data, webhook_secrets=secrets, wecom=wecom
    )
    rt = build_runtime(settings, clock=clock)
    yield rt
    await rt.aclose()


async def stored(runtime: Runtime, model: type[Event | Contact] = Event) -> int:
    async with runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def raw(body: Any, hostile: bytes) -> bytes:
    """``body`` as JSON text with ``hostile`` in place of the string SPOT."""
    text = json.dumps(body, ensure_ascii=False).encode()
    assert text.count(f'"{SPOT}"'.encode()) == 1
    return text.replace(f'"{SPOT}"'.encode(), hostile)


def assert_refused(response: httpx.Response, path: str | None = None) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    if path is not None:
        assert path in [e["path"] for e in response.json()["errors"]], response.json()


# Amounts, quantities, times.


async def test_a_total_over_the_bound_is_refused_and_the_customer_keeps_ordering(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    poisoned = await client.post(
        "/v1/events", json=order_event("o-1", total=999999999999), headers=auth(INGEST)
    )
    later = await client.post("/v1/events", json=order_event("o-2"), headers=auth(INGEST))

    assert_refused(poisoned, "data.total")
    assert later.status_code == 202
    assert later.json()["status"] == "accepted"


async def test_a_customer_past_the_old_spend_column_still_orders(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    first = await client.post("/v1/events", json=order_event("o-1"), headers=auth(INGEST))
    contact_id = await contact_of(client, first.json())
    async with runtime.sessions() as session, session.begin():
        # What numeric(14, 2) held at most; ten thousand orders at the largest amount.
        spent = update(Contact).where(Contact.id == contact_id).values(total_spent=999999999999)
        await session.execute(spent)

    largest = order_event("o-2", total=100_000_000)
    response = await client.post("/v1/events", json=largest, headers=auth(INGEST))

    assert response.status_code == 202
    contact = (await client.get(f"/v1/contacts/{contact_id}", headers=auth())).json()
    assert float(contact["stats"]["total_spent"]) == 1_000_099_999_999


async def test_a_quantity_over_the_bound_is_refused(client: httpx.AsyncClient) -> None:
    event = order_event("o-1")
    event["data"]["items"][0]["quantity"] = 400_000

    response = await client.post("/v1/events", json=event, headers=auth(INGEST))

    assert_refused(response, "data.items[0].quantity")


EXTREMES = ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"]


@pytest.mark.parametrize("when", EXTREMES)
async def test_a_time_out_of_range_is_refused_in_a_body(
    client: httpx.AsyncClient, runtime: Runtime, when: str
) -> None:
    event = {**order_event("o-1"), "occurred_at": when}
    batch = {"events": [order_event("o-2"), event]}

    single = await client.post("/v1/events", json=event, headers=auth(INGEST))
    batched = await client.post("/v1/events", json=batch, headers=auth(INGEST))

    assert_refused(single, "occurred_at")
    assert_refused(batched, "events[1].occurred_at")
    assert await stored(runtime) == 0


@pytest.mark.parametrize("when", EXTREMES)
@pytest.mark.parametrize(
    ("url", "name"), [("/v1/runs", "since"), ("/v1/runs", "until"), ("/v1/mock/outbox", "since")]
)
async def test_a_time_out_of_range_is_refused_as_a_filter(
    client: httpx.AsyncClient, url: str, name: str, when: str
) -> None:
    response = await client.get(url, params={name: when}, headers=auth())

    assert_refused(response, f"query.{name}")


# Text and JSON the database, the serializer or Python cannot hold.


def _signed_generic(body: bytes, clock: FakeClock) -> dict[str, str]:
    return {generic.HEADER: generic.sign(SECRET, body, int(clock.now.timestamp()))}


def _signed_shopify(body: bytes, _clock: FakeClock) -> dict[str, str]:
    return {
        shopify.SIGNATURE_HEADER: shopify.sign(SECRET, body),
        shopify.TOPIC_HEADER: "orders/paid",
    }


def _signed_youzan(body: bytes, _clock: FakeClock) -> dict[str, str]:
    client_id = "50535be20334f52771"
    sign = hashlib.md5(client_id.encode() + body + SECRET.encode()).hexdigest()  # noqa: S324
    return {"Event-Sign": sign, "Client-Id": client_id}


def _unsigned(_body: bytes, _clock: FakeClock) -> dict[str, str]:
    return {}


def _sample(*parts: str) -> Any:
    return json.loads(WEBHOOKS.joinpath(*parts).read_text(encoding="utf-8"))


def _generic_order() -> dict[str, Any]:
    customer = {"id": "cus-9", "phone": "13800138000", "name": SPOT}
    return {
        "order_id": "A1",
        "status": "paid",
        "occurred_at": "2026-11-23T10:00:00+08:00",
        "customer": customer,
        "items": [{"sku": "FACE-WASH", "name": "洗面奶", "quantity": 1, "price": 9}],
        "total": 9,
    }


def _shopify_order() -> dict[str, Any]:
    order = _sample("shopify", "order.json")
    order["line_items"][0]["name"] = SPOT
    return dict(order)


def _youzan_push() -> dict[str, Any]:
    return {**_sample("youzan", "trade_buyer_pay.json"), "msg_id": SPOT}


def _event_with_note() -> dict[str, Any]:
    return order_event("o-1", note=SPOT)


Route = tuple[str, Callable[[], Any], Callable[[bytes, FakeClock], dict[str, str]]]
ROUTES: dict[str, Route] = {
    "events": ("/v1/events", _event_with_note, _unsigned),
    "events batch": (
        "/v1/events",
        lambda: {"events": [order_event("o-0"), _event_with_note()]},
        _unsigned,
    ),
    "generic": ("/v1/webhooks/generic", _generic_order, _signed_generic),
    "shopify": ("/v1/webhooks/shopify", _shopify_order, _signed_shopify),
    "youzan signed": ("/v1/webhooks/youzan", _youzan_push, _signed_youzan),
    # Youzan's sign can sit in the body: refused before the signature is looked for.
    "youzan unsigned": ("/v1/webhooks/youzan", _youzan_push, _unsigned),
    "sms aliyun": (
        f"/v1/webhooks/sms/aliyun?token={SECRET}",
        lambda: [{"phone_number": "13800138000", "content": SPOT, "sequence_id": 1}],
        _unsigned,
    ),
    "sms tencent": (
        f"/v1/webhooks/sms/tencent?token={SECRET}",
        lambda: {"mobile": "13800138000", "nationcode": "86", "text": SPOT, "time": 1},
        _unsigned,
    ),
    "simulate": ("/v1/simulate", lambda: {"event": _event_with_note()}, _unsigned),
}


@pytest.mark.parametrize("route", list(ROUTES))
async def test_what_cannot_be_held_is_refused_on_every_route_and_nothing_is_stored(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock, route: str
) -> None:
    url, body, signed = ROUTES[route]
    for kind, hostile in HOSTILE.items():
        content = raw(body(), hostile)
        headers = {**auth(INGEST if url == "/v1/events" else ADMIN), **signed(content, clock)}
        response = await client.post(url, content=content, headers=headers)

        assert response.status_code == 422, (kind, response.text)
        assert response.headers["content-type"] == PROBLEM
        assert (await stored(runtime), await stored(runtime, Contact)) == (0, 0), kind


async def test_a_refusal_names_the_path_of_the_value(client: httpx.AsyncClient) -> None:
    batch = {"events": [order_event("o-0"), order_event("o-1", note=SPOT)]}

    for kind, hostile in HOSTILE.items():
        response = await client.post(
            "/v1/events", content=raw(batch, hostile), headers=auth(INGEST)
        )
        path = "(body)" if kind in ("deep", "utf-8 surrogate") else "events[1].data.note"
        assert_refused(response, path)


ADDED = v.fixture("add_external_contact.xml")


@pytest.mark.parametrize(
    "inner",
    [
        ADDED.replace("<![CDATA[teststate]]>", "a&#0;b"),
        ADDED.replace("teststate", "a\x00b"),
        ADDED.replace("1403610513", "99999999999"),
        ADDED.replace("1403610513", "９９"),
    ],
    ids=["char-ref", "raw", "year-5138", "fullwidth-digits"],
)
async def test_a_wecom_callback_the_database_cannot_hold_is_refused(
    client: httpx.AsyncClient, runtime: Runtime, inner: str
) -> None:
    params, body = v.signed_post(v.official(), inner)

    response = await client.post("/v1/wecom/callback", params=params, content=body)

    assert_refused(response)
    assert (await stored(runtime), await stored(runtime, Contact)) == (0, 0)


async def test_a_url_with_a_nul_is_refused(client: httpx.AsyncClient) -> None:
    for url in (
        "/v1/events/ev%00",
        "/v1/contacts?wecom_userid=a%00b",
        "/v1/runs?contact=%00",
        "/v1/deliveries?channel=%00",
    ):
        response = await client.get(url, headers=auth())
        assert response.status_code == 422, (url, response.text)


# occurred_at is optional.


async def test_an_event_without_occurred_at_occurred_when_received(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    event = order_event("o-1")
    del event["occurred_at"]

    response = await client.post("/v1/events", json=event, headers=auth(INGEST))
    sent = await client.post("/v1/events", json=order_event("o-2"), headers=auth(INGEST))

    assert response.status_code == 202
    detail = (await client.get(f"/v1/events/{response.json()['event_id']}", headers=auth())).json()
    assert detail["occurred_at"] == clock.now.isoformat()
    assert detail["occurred_at_source"] == "received"
    given = (await client.get(f"/v1/events/{sent.json()['event_id']}", headers=auth())).json()
    assert given["occurred_at_source"] == "sent"
