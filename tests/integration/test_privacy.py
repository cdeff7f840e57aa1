"""A person's copy of their data and its erasure (PIPL Art. 45, 47), through the API, on every
test database: after ``DELETE /v1/contacts/{id}`` no row of any table names them."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from smr.eventlog import PARTITIONS, EventStatus
from smr.models import Base, Contact, Delivery, EventLogEntry, Run
from smr.repositories import event_log
from smr.repositories import subjects as subjects_repo
from smr.runtime import Runtime
from smr.services.processing import process
from smr.statuses import DeliveryStatus, RunStatus
from tests.conftest import CORE
from tests.helpers import INGEST, FakeClock, auth, consent_event, contact_of, order_event

PHONE = "13812345678"
NAME = "李小红"
#: An attribute the run log notes; marketing on SMS, deferred by the quiet hours the test posts
#: in; then a wait.
CARE = """
id: care
name: 关怀
mode: parallel
trigger: {event: order.paid}
steps:
  - set: {称呼: "{{ contact.name }}女士"}
  - send: {channel: sms, category: marketing, text: "{{ contact.name }}，新品上架了"}
  - wait: 3d
  - send: {channel: wecom, category: service, text: "{{ contact.name }}，用得怎么样？"}
"""


@pytest.fixture
def playbooks_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "playbooks"
    shutil.copytree(CORE, folder)
    (folder / "care.yaml").write_text(CARE.lstrip(), encoding="utf-8")
    return folder


@pytest.fixture
def clock() -> FakeClock:
    # 22:00 in Asia/Shanghai: inside the quiet hours, so the marketing send waits till 09:00.
    return FakeClock(datetime(2026, 11, 23, 14, 0, tzinfo=UTC))


def her_order(key: str, **extra: Any) -> dict[str, Any]:
    event = order_event(key, phone=PHONE, total=120, **extra)
    event["contact"] = {"phone": PHONE, "name": NAME, "attributes": {"城市": "杭州"}}
    return event


async def ordered(client: httpx.AsyncClient, *keys: str) -> str:
    """Her orders, after she agreed to marketing SMS (the care playbook's first message)."""
    consent = consent_event(f"consent-{keys[0]}", phone=PHONE, source=f"注册页-{NAME}")
    assert (await client.post("/v1/events", json=consent, headers=auth(INGEST))).is_success
    contact_id = ""
    for key in keys:
        answer = await client.post("/v1/events", json=her_order(key), headers=auth(INGEST))
        assert answer.status_code == 202, answer.text
        contact_id = await contact_of(client, answer.json())
    return contact_id


async def mentions(runtime: Runtime, *needles: str) -> list[str]:
    """Every table.column whose stored value holds one of ``needles``."""
    found = []
    async with runtime.sessions() as session:
        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(select(table))).mappings():
                for column, value in row.items():
                    if any(needle in str(value) for needle in needles):
                        found.append(f"{table.name}.{column}")
    return sorted(set(found))


async def test_the_export_holds_everything_stored_about_the_person(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    contact_id = await ordered(client, "o-1", "o-2")

    answer = await client.get(f"/v1/contacts/{contact_id}/export", headers=auth())

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-disposition"].startswith("attachment;")
    export = answer.json()
    assert export["contact"]["name"] == NAME
    assert export["contact"]["identities"] == {"phone": PHONE}
    assert export["contact"]["attributes"] == {"城市": "杭州", "称呼": f"{NAME}女士"}
    assert export["contact"]["stats"]["orders"] == 2
    assert export["contact"]["consents"]["sms"]["source"] == f"注册页-{NAME}"
    assert [e["key"] for e in export["events"]] == ["consent-o-1", "o-1", "o-2"]
    assert export["events"][1]["contact"]["name"] == NAME
    assert export["events"][1]["data"]["order_id"] == "order-o-1"
    assert sorted(r["playbook"] for r in export["runs"]) == sorted(["order-thank-you", "care"] * 2)
    assert all(r["trace"] for r in export["runs"])
    texts = [d["text"] for d in export["deliveries"]]
    assert sum(NAME in (t or "") for t in texts) == 4  # two thank-yous, two SMS
    sent = [d for d in export["deliveries"] if d["status"] == DeliveryStatus.SENT]
    assert sent
    assert all(d["attempt_log"] for d in sent)
    assert {o["delivery_id"] for o in export["outbox"]} == {d["id"] for d in sent}


async def test_an_erased_person_is_named_by_no_row_and_the_counts_stay(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    contact_id = await ordered(client, "o-1", "o-2")
    assert await mentions(runtime, PHONE, NAME, "杭州")  # they are stored

    answer = await client.delete(f"/v1/contacts/{contact_id}", headers=auth())

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "erased"
    erased = body["erased"]
    assert erased["identities"] == 1
    assert erased["events"] == 3  # her consent and two orders
    assert erased["runs"] == 4
    assert erased["runs_stopped"] == 2  # the two care runs, waiting three days
    assert erased["deliveries_cancelled"] == 2  # the SMS waiting for the quiet hours to end
    assert erased["deliveries_in_flight"] == 0
    assert erased["outbox"] == 2
    assert await mentions(runtime, PHONE, NAME, "杭州") == []
    contact = (await client.get(f"/v1/contacts/{contact_id}", headers=auth())).json()
    assert contact["erased"] is True
    assert (contact["name"], contact["identities"], contact["attributes"]) == (None, {}, {})
    assert contact["consents"] == {}
    assert (contact["stats"]["orders"], contact["stats"]["total_spent"]) == (2, "240.00")
    assert contact["active_runs"] == []
    async with runtime.sessions() as session:
        runs = (await session.scalars(select(Run).where(Run.contact_id == contact_id))).all()
        deliveries = (
            await session.scalars(select(Delivery).where(Delivery.contact_id == contact_id))
        ).all()
    assert sorted(r.status for r in runs) == sorted(
        [RunStatus.COMPLETED] * 2 + [RunStatus.CANCELLED] * 2
    )
    assert {r.end_reason for r in runs if r.status == RunStatus.CANCELLED} == {"contact erased"}
    assert sorted(d.status for d in deliveries) == sorted(
        [DeliveryStatus.SENT] * 2 + [DeliveryStatus.CANCELLED] * 2
    )


async def test_erasing_again_changes_nothing_and_says_so(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    contact_id = await ordered(client, "o-1")
    first = await client.delete(f"/v1/contacts/{contact_id}", headers=auth())
    clock.advance(hours=1)

    again = await client.delete(f"/v1/contacts/{contact_id}", headers=auth())

    assert again.status_code == 200
    assert again.json() == {
        "id": contact_id,
        "status": "already_erased",
        "erased_at": first.json()["erased_at"],
        "erased": None,
    }


async def test_erasing_nobody_or_a_group_is_refused(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    async with runtime.sessions() as session, session.begin():
        corp = await subjects_repo.ensure_corp(session, name="公司", now=clock.now)

    missing = await client.delete("/v1/contacts/ct_nobody", headers=auth())
    not_a_person = await client.delete(f"/v1/contacts/{corp}", headers=auth())
    export = await client.get(f"/v1/contacts/{corp}/export", headers=auth())

    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert (not_a_person.status_code, export.status_code) == (409, 409)
    assert "not a person" in not_a_person.json()["detail"]


async def test_the_same_phone_after_an_erasure_is_a_new_contact(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    erased_id = await ordered(client, "o-1")
    await client.delete(f"/v1/contacts/{erased_id}", headers=auth())

    new_id = await ordered(client, "o-2")

    assert new_id != erased_id
    contact = (await client.get(f"/v1/contacts/{new_id}", headers=auth())).json()
    assert (contact["name"], contact["stats"]["orders"], contact["erased"]) == (NAME, 1, False)
    tombstone = (await client.get(f"/v1/contacts/{erased_id}", headers=auth())).json()
    assert (tombstone["name"], tombstone["stats"]["orders"]) == (None, 1)


async def test_events_waiting_in_the_log_are_erased_with_the_person(
    accepting_client: httpx.AsyncClient, runtime: Runtime
) -> None:
    client = accepting_client
    first = await client.post("/v1/events", json=her_order("o-1"), headers=auth(INGEST))
    await runtime.process_pending()
    contact_id = await contact_of(client, first.json())
    waiting = await client.post("/v1/events", json=her_order("o-2"), headers=auth(INGEST))
    event_id = waiting.json()["event_id"]

    erased = (await client.delete(f"/v1/contacts/{contact_id}", headers=auth())).json()
    await runtime.process_pending()

    assert erased["erased"]["pending_events"] == 1
    event = (await client.get(f"/v1/events/{event_id}", headers=auth())).json()
    assert (event["status"], event["data"], event["runs"]) == (EventStatus.ERASED, {}, [])
    contact = (await client.get(f"/v1/contacts/{contact_id}", headers=auth())).json()
    assert contact["stats"]["orders"] == 1
    assert await mentions(runtime, PHONE, NAME) == []


async def test_an_event_naming_an_erased_contact_by_id_changes_nothing(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    contact_id = await ordered(client, "o-1")
    await client.delete(f"/v1/contacts/{contact_id}", headers=auth())
    event = her_order("o-2")
    event["contact"] = {"id": contact_id, "phone": PHONE, "name": NAME}

    answer = await client.post("/v1/events", json=event, headers=auth(INGEST))

    detail = (await client.get(f"/v1/events/{answer.json()['event_id']}", headers=auth())).json()
    assert (detail["status"], detail["contact_id"], detail["data"]) == (
        EventStatus.ERASED,
        contact_id,
        {},
    )
    assert detail["evaluations"] == []
    assert detail["runs"] == []
    contact = (await client.get(f"/v1/contacts/{contact_id}", headers=auth())).json()
    assert (contact["identities"], contact["name"], contact["stats"]["orders"]) == ({}, None, 1)
    assert await mentions(runtime, PHONE, NAME) == []


async def test_a_waiting_run_of_an_erased_person_never_wakes(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    contact_id = await ordered(client, "o-1")
    await client.delete(f"/v1/contacts/{contact_id}", headers=auth())

    clock.advance(days=4)
    await runtime.tick()

    async with runtime.sessions() as session:
        sent = await session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.contact_id == contact_id, Delivery.status == DeliveryStatus.SENT)
        )
    assert sent == 1  # the thank-you, before the erasure; not the SMS, not the care message


async def test_a_batch_that_read_events_an_erasure_took_is_refused_whole(
    accepting_client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    """The race the erasure guards against: a processor read an event from the log, the
    person is erased, then the processor writes what the event caused. Its transaction is
    refused (``LogMoved``: the processor takes the log again), so nothing it made is kept."""
    client = accepting_client
    first = await client.post("/v1/events", json=her_order("o-1"), headers=auth(INGEST))
    await runtime.process_pending()
    contact_id = await contact_of(client, first.json())
    await client.post("/v1/events", json=her_order("o-2"), headers=auth(INGEST))
    async with runtime.sessions() as reading:
        batch = await event_log.take(reading, partitions=list(range(PARTITIONS)), limit=10)
    assert [e.key for e in batch] == ["o-2"]

    await client.delete(f"/v1/contacts/{contact_id}", headers=auth())

    with pytest.raises(event_log.LogMoved):
        async with runtime.sessions() as session, session.begin():
            await process(
                session,
                batch,
                catalog=runtime.catalog,
                now=clock.now,
                dispatcher=runtime.dispatcher,
            )
    async with runtime.sessions() as session:
        runs = await session.scalar(
            select(func.count()).select_from(Run).where(Run.contact_id == contact_id)
        )
        left = await session.scalar(select(func.count()).select_from(EventLogEntry))
        tombstone = await session.get(Contact, contact_id)
    assert (runs, left) == (2, 0)  # o-1's two runs; o-2 made none
    assert tombstone is not None
    assert tombstone.name is None
    assert await mentions(runtime, NAME) == []
