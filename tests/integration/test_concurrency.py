"""Concurrent ingest of events for the same customers: no lost updates, no deadlock, no 500."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import httpx
from sqlalchemy import func, select

from smr.models import Contact, ContactIdentity, Event, Run
from smr.runtime import Runtime
from tests.helpers import INGEST, auth, contact_of, order_event

PHONES = [f"1380000{i:04d}" for i in range(20)]


async def test_concurrent_batches_sharing_contacts_keep_every_order(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    rng = random.Random(7)
    batches = [
        [order_event(f"b{b}-{i}", phone=rng.choice(PHONES)) for i in range(50)] for b in range(6)
    ]
    expected = Counter(e["contact"]["phone"] for batch in batches for e in batch)

    responses = await asyncio.gather(
        *(client.post("/v1/events", json={"events": b}, headers=auth(INGEST)) for b in batches)
    )

    assert [r.status_code for r in responses] == [202] * len(batches)
    async with runtime.sessions() as session:
        rows = await session.execute(
            select(ContactIdentity.value, Contact.orders).join(
                Contact, Contact.id == ContactIdentity.contact_id
            )
        )
        orders = {row.value: row.orders for row in rows}
        contacts = await session.scalar(select(func.count()).select_from(Contact))
    assert orders == dict(expected)
    assert contacts == len(expected)


async def test_concurrent_first_events_of_one_new_customer_make_one_contact(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    events = [order_event(f"n-{i}", phone="13999999999") for i in range(8)]

    responses = await asyncio.gather(
        *(client.post("/v1/events", json=e, headers=auth(INGEST)) for e in events)
    )

    assert {r.status_code for r in responses} == {202}
    assert len({await contact_of(client, r.json()) for r in responses}) == 1
    async with runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Contact)) == 1
        assert await session.scalar(select(Contact.orders)) == len(events)


async def _known(client: httpx.AsyncClient, phones: list[str]) -> None:
    """The customers exist: their next events find them rather than create them."""
    first = [order_event(f"first-{p}", phone=p) for p in phones]
    response = await client.post("/v1/events", json={"events": first}, headers=auth(INGEST))
    assert response.status_code == 202


async def test_concurrent_single_events_of_known_customers_keep_every_order(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    phones = PHONES[:3]
    await _known(client, phones)
    rng = random.Random(11)
    events = [order_event(f"s-{i}", phone=rng.choice(phones), total=10) for i in range(30)]
    expected = Counter(e["contact"]["phone"] for e in events) + Counter(phones)

    responses = await asyncio.gather(
        *(client.post("/v1/events", json=e, headers=auth(INGEST)) for e in events)
    )

    assert {r.status_code for r in responses} == {202}
    async with runtime.sessions() as session:
        rows = await session.execute(
            select(ContactIdentity.value, Contact.orders, Contact.total_spent).join(
                Contact, Contact.id == ContactIdentity.contact_id
            )
        )
        stored = {row.value: (row.orders, row.total_spent) for row in rows}
    assert stored == {p: (n, 99 + 10 * (n - 1)) for p, n in expected.items()}


async def test_concurrent_events_of_one_customer_respect_a_cooldown(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    phone = PHONES[0]
    await _known(client, [phone])
    asks = [
        {
            "id": f"ask-{i}",
            "type": "chat.message",
            "occurred_at": "2026-11-23T10:00:00+08:00",
            "contact": {"phone": phone},
            "data": {"text": "价格多少"},
        }
        for i in range(8)
    ]

    responses = await asyncio.gather(
        *(client.post("/v1/events", json=e, headers=auth(INGEST)) for e in asks)
    )

    assert {r.status_code for r in responses} == {202}
    async with runtime.sessions() as session:
        started = await session.scalar(
            select(func.count()).select_from(Run).where(Run.playbook_id == "keyword-price")
        )
        outcomes = Counter(
            evaluation["outcome"]
            for evaluations in await session.scalars(
                select(Event.evaluations).where(Event.type == "chat.message")
            )
            for evaluation in evaluations
            if evaluation["playbook"] == "keyword-price"
        )
    # keyword-price has a one-minute cooldown: one of the eight starts a run.
    assert started == 1
    assert outcomes == {"started": 1, "refused_cooldown": len(asks) - 1}
