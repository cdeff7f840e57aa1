"""Concurrent ingest of events for the same customers: no lost updates, no deadlock, no 500."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import httpx
from sqlalchemy import func, select

from smr.models import Contact, ContactIdentity
from smr.runtime import Runtime
from tests.helpers import INGEST, auth, order_event

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
    assert len({r.json()["contact_id"] for r in responses}) == 1
    async with runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Contact)) == 1
        assert await session.scalar(select(Contact.orders)) == len(events)
