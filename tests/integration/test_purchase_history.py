"""Purchase history through the pipeline, on every test database: orders and refunds kept by
SKU and category on the contact, read by templates and shown by the API."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from smr.models import Delivery, Run
from smr.runtime import Runtime
from tests.conftest import CORE
from tests.helpers import INGEST, FakeClock, auth, contact_of, order_event

NOTE = """
id: product-note
name: 商品记录
trigger: {event: order.paid}
steps:
  - send:
      channel: wecom
      category: service
      text: >-
        洗面奶{{ contact.products['FACE-WASH'].quantity }}件，
        洁面{{ contact.categories['洁面'].orders }}单，
        首次{{ contact.products['FACE-WASH'].first_bought_at.day }}日，
        {{ 'TONER' in contact.products }}
"""


@pytest.fixture
def playbooks_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "playbooks"
    shutil.copytree(CORE, folder)
    (folder / "product-note.yaml").write_text(NOTE.lstrip(), encoding="utf-8")
    return folder


def bought(key: str, day: int, quantity: int, *, refund: bool = False) -> dict[str, Any]:
    event = order_event(key, total=50 * quantity)
    event["type"] = "order.refunded" if refund else "order.paid"
    event["occurred_at"] = f"2026-11-{day:02d}T10:00:00+08:00"
    item = {"sku": "FACE-WASH", "name": "洗面奶", "quantity": quantity, "category": "洁面"}
    event["data"]["items"] = [item]
    return event


async def test_orders_and_refunds_make_the_history_templates_read(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    for event in (bought("o-1", 3, 2), bought("o-2", 9, 1), bought("r-1", 10, 1, refund=True)):
        answer = await client.post("/v1/events", json=event, headers=auth(INGEST))
        assert answer.status_code == 202, answer.text
    contact_id = await contact_of(client, answer.json())

    async with runtime.sessions() as session:
        notes = (
            await session.scalars(
                select(Delivery.text)
                .where(Delivery.playbook_id == "product-note")
                .order_by(Delivery.created_at)
            )
        ).all()
    assert notes == [
        "洗面奶2件， 洁面1单， 首次3日， False",
        "洗面奶3件， 洁面2单， 首次3日， False",
    ]
    contact = (await client.get(f"/v1/contacts/{contact_id}", headers=auth())).json()
    wash = contact["purchases"]["skus"]["FACE-WASH"]
    assert (wash["orders"], wash["quantity"], wash["refunded"]) == (2, 2, 1)
    assert (wash["name"], wash["category"]) == ("洗面奶", "洁面")
    assert wash["first"].startswith("2026-11-03T")
    assert wash["last"].startswith("2026-11-09T")
    assert contact["purchases"]["categories"]["洁面"]["quantity"] == 2


CYCLE = """
id: cycle
name: 周期提醒
mode: parallel
trigger:
  event: order.paid
  each: "event.skus | select('in', vars.use_cycle_days) | list"
steps:
  - wait: "{{ contact.products[run.item].days_left }}d"
  - send: {channel: mock, category: service, text: "{{ run.item }} 用完了"}
exit_on:
  - event: order.paid
    if: "run.item in event.skus"
"""


async def test_each_cycle_sku_gets_its_own_run_and_a_rebuy_carries_the_days_left(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock, playbooks_dir: Path
) -> None:
    policies = playbooks_dir / "policies.yaml"
    text = policies.read_text(encoding="utf-8").replace(
        "vars:\n", "vars:\n  use_cycle_days: {FACE-WASH: 25, TONER: 30}\n", 1
    )
    policies.write_text(text, encoding="utf-8")
    (playbooks_dir / "cycle.yaml").write_text(CYCLE.lstrip(), encoding="utf-8")
    runtime.catalog.reload()
    assert runtime.catalog.errors == []
    first = bought("o-1", 23, 1)
    first["data"]["items"].append({"sku": "TONER", "name": "爽肤水", "quantity": 1})
    first["occurred_at"] = clock.now.isoformat()
    await client.post("/v1/events", json=first, headers=auth(INGEST))
    clock.advance(days=10)
    again = bought("o-2", 23, 1)  # the cleanser again, 15 days before it runs out
    again["occurred_at"] = clock.now.isoformat()
    answer = await client.post("/v1/events", json=again, headers=auth(INGEST))

    async with runtime.sessions() as session:
        stmt = select(Run.item, Run.status).where(Run.playbook_id == "cycle")
        runs = (await session.execute(stmt)).all()
    assert sorted((item, status) for item, status in runs) == [
        ("FACE-WASH", "exited"),
        ("FACE-WASH", "waiting"),
        ("TONER", "waiting"),
    ]
    clock.advance(days=20)  # day 30: the toner is out
    await runtime.tick()
    assert await outbox(client) == ["TONER 用完了"]
    clock.advance(days=19)  # day 49: 15 days left on day 10, and 25 more
    await runtime.tick()
    assert await outbox(client) == ["TONER 用完了"]
    clock.advance(days=1)  # day 50
    await runtime.tick()
    assert await outbox(client) == ["TONER 用完了", "FACE-WASH 用完了"]
    contact = (
        await client.get(f"/v1/contacts/{await contact_of(client, answer.json())}", headers=auth())
    ).json()
    assert contact["purchases"]["skus"]["FACE-WASH"]["runs_out"] == "2027-01-12T03:00:00+00:00"


async def outbox(client: httpx.AsyncClient) -> list[str]:
    """The reminders the mock channel sent, oldest first."""
    found = await client.get("/v1/mock/outbox", headers=auth())
    sent = [(m["sent_at"], m["text"]) for m in found.json()["items"]]
    return [text for _, text in sorted(sent) if "用完了" in text]
