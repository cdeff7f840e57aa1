"""POST /v1/events through the ASGI app, on every test database."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import func, select

from smr.models import Contact, Delivery, Event, Run
from smr.runtime import Runtime
from smr.services.contacts import load_states
from smr.services.plan import contact_view
from tests.helpers import INGEST, FakeClock, auth, contact_of, order_event


async def count(runtime: Runtime, model: type[object]) -> int:
    async with runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_order_is_accepted_and_starts_the_thank_you_run(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    response = await client.post("/v1/events", json=order_event("o-1"), headers=auth(INGEST))

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "accepted"
    assert body["id"] == "o-1"
    event = (await client.get(f"/v1/events/{body['event_id']}", headers=auth())).json()
    assert [(e["playbook"], e["outcome"]) for e in event["evaluations"]] == [
        ("order-thank-you", "started")
    ]
    assert [r["status"] for r in event["runs"]] == ["completed"]


async def test_repeated_id_is_duplicate_and_creates_nothing(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    first = await client.post("/v1/events", json=order_event("o-1"), headers=auth(INGEST))
    before = [await count(runtime, m) for m in (Event, Run, Delivery, Contact)]

    again = await client.post("/v1/events", json=order_event("o-1"), headers=auth(INGEST))

    assert again.status_code == 202
    assert again.json()["status"] == "duplicate"
    assert again.json()["event_id"] == first.json()["event_id"]
    assert [await count(runtime, m) for m in (Event, Run, Delivery, Contact)] == before


async def test_batch_reports_each_event_and_dedupes_within_the_batch(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    batch = {"events": [order_event("a"), order_event("b", phone="13900000000"), order_event("a")]}

    response = await client.post("/v1/events", json=batch, headers=auth(INGEST))

    assert response.status_code == 202
    assert [r["status"] for r in response.json()["results"]] == [
        "accepted",
        "accepted",
        "duplicate",
    ]
    assert await count(runtime, Event) == 2
    assert await count(runtime, Contact) == 2


async def test_contact_resolved_by_any_identity_and_stats_maintained(
    client: httpx.AsyncClient,
) -> None:
    first = order_event("o-1", total=100)
    second = order_event("o-2", total=50)
    second["contact"]["wecom_userid"] = "wm-abc"
    refund = {**order_event("r-1", total=30), "type": "order.refunded"}
    refund["contact"] = {"wecom_userid": "wm-abc"}
    for event in (first, second, refund):
        assert (
            await client.post("/v1/events", json=event, headers=auth(INGEST))
        ).status_code == 202

    found = await client.get("/v1/contacts", params={"wecom_userid": "wm-abc"}, headers=auth())

    contact = found.json()
    assert contact["identities"] == {"phone": "13800000000", "wecom_userid": "wm-abc"}
    assert contact["stats"]["orders"] == 2
    assert contact["stats"]["total_spent"] == "120.00"
    assert "复购" in contact["tags"]
    assert "已购" in contact["tags"]
    by_phone = await client.get("/v1/contacts", params={"phone": "138-0000-0000"}, headers=auth())
    assert by_phone.json()["id"] == contact["id"]


@pytest.mark.parametrize(
    ("text", "outcome"),
    [("这个多少钱？", "started"), ("价格呢", "started"), ("hello", "keyword_not_found")],
)
async def test_keyword_trigger(client: httpx.AsyncClient, text: str, outcome: str) -> None:
    event = {
        "id": "m-1",
        "type": "chat.message",
        "occurred_at": "2026-11-23T10:00:00+08:00",
        "contact": {"wecom_userid": "wm-1"},
        "data": {"text": text},
    }
    body = (await client.post("/v1/events", json=event, headers=auth(INGEST))).json()

    detail = (await client.get(f"/v1/events/{body['event_id']}", headers=auth())).json()
    assert [e["outcome"] for e in detail["evaluations"]] == [outcome]


async def test_runs_list_filters_and_paginates(client: httpx.AsyncClient) -> None:
    for i in range(3):
        event = order_event(f"o-{i}", phone=f"1380000000{i}")
        await client.post("/v1/events", json=event, headers=auth(INGEST))

    first = (await client.get("/v1/runs", params={"limit": 2}, headers=auth())).json()
    second = await client.get(
        "/v1/runs", params={"limit": 2, "cursor": first["next_cursor"]}, headers=auth()
    )

    ids = [r["id"] for r in first["items"]] + [r["id"] for r in second.json()["items"]]
    assert len(set(ids)) == 3
    assert second.json()["next_cursor"] is None
    assert ids == sorted(ids, reverse=True)
    filtered = await client.get(
        "/v1/runs", params={"playbook": "keyword-price", "status": "completed"}, headers=auth()
    )
    assert filtered.json()["items"] == []


async def test_cooldown_refusal_is_recorded_and_lifts(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    def chat(key: str) -> dict[str, object]:
        return {
            "id": key,
            "type": "chat.message",
            "occurred_at": "2026-11-23T10:00:00+08:00",
            "contact": {"wecom_userid": "wm-1"},
            "data": {"text": "多少钱"},
        }

    outcomes = []
    for key, step in (("m-1", 0), ("m-2", 30), ("m-3", 31)):
        clock.advance(seconds=step)
        body = (await client.post("/v1/events", json=chat(key), headers=auth(INGEST))).json()
        detail = (await client.get(f"/v1/events/{body['event_id']}", headers=auth())).json()
        outcomes.append(detail["evaluations"][0])

    assert [o["outcome"] for o in outcomes] == ["started", "refused_cooldown", "started"]
    assert "cooldown 1m" in outcomes[1]["detail"]


async def test_explicit_contact_id_is_created_once_and_found_by_its_identities(
    client: httpx.AsyncClient,
) -> None:
    first = order_event("o-1")
    first["contact"] = {"id": "shop-42", "phone": "13700000000"}
    second = order_event("o-2", phone="13700000000")

    answers = [
        (await client.post("/v1/events", json=e, headers=auth(INGEST))).json()
        for e in (first, second)
    ]

    assert [await contact_of(client, a) for a in answers] == ["shop-42", "shop-42"]
    contact = (await client.get("/v1/contacts/shop-42", headers=auth())).json()
    assert contact["identities"] == {"phone": "13700000000"}
    assert contact["stats"]["orders"] == 2


async def test_spend_is_kept_per_local_calendar_month(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    # 23:30 on 31 October in Shanghai is October; 00:10 on 1 November is November, although
    # both are 31 October in UTC. A refund comes off the month it happens in.
    orders = [
        ("o-oct", "order.paid", "2026-10-31T23:30:00+08:00", 300),
        ("o-nov", "order.paid", "2026-11-01T00:10:00+08:00", 80),
        ("r-nov", "order.refunded", "2026-11-02T12:00:00+08:00", 30),
    ]
    for key, kind, at, total in orders:
        body = {**order_event(key, total=total), "type": kind, "occurred_at": at}
        assert (await client.post("/v1/events", json=body, headers=auth(INGEST))).status_code == 202

    contact = (
        await client.get("/v1/contacts", params={"phone": "13800000000"}, headers=auth())
    ).json()
    assert contact["stats"]["monthly_spend"] == {"2026-10": "300", "2026-11": "50"}

    async with runtime.sessions() as session:
        states = await load_states(session, [contact["id"]])
    stats = contact_view(states[contact["id"]], clock.now, runtime.catalog).stats
    assert (stats.spend_last_month, stats.spend_this_month) == (Decimal(300), Decimal(50))


async def test_a_contacts_updated_at_moves_only_when_an_event_changes_it(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    async def updated_at() -> object:
        async with runtime.sessions() as session:
            return await session.scalar(select(Contact.updated_at))

    def chat(key: str, text: str, *, ago: timedelta = timedelta(0)) -> dict[str, object]:
        return {
            "id": key,
            "type": "chat.message",
            "occurred_at": (clock.now - ago).isoformat(),
            "contact": {"phone": "13800000000", "name": "小王"},
            "data": {"text": text},
        }

    await client.post("/v1/events", json=chat("c-1", "你好"), headers=auth(INGEST))
    first = await updated_at()

    clock.advance(minutes=5)
    # Written before the first (so not the latest message), the same name, no playbook acted.
    older = chat("c-2", "在吗", ago=timedelta(minutes=10))
    await client.post("/v1/events", json=older, headers=auth(INGEST))
    assert await updated_at() == first

    clock.advance(minutes=5)
    await client.post("/v1/events", json=chat("c-3", "价格多少"), headers=auth(INGEST))
    assert await updated_at() == clock.now  # keyword-price tagged 询价
