"""Purchase history through the pipeline, on every test database: orders and refunds kept by
SKU and category on the contact, read by templates and shown by the API."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from smr.models import Delivery
from smr.runtime import Runtime
from tests.conftest import CORE
from tests.helpers import INGEST, auth, contact_of, order_event

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
