"""From a shop's order webhook to an SMS, on a real database with the vendors faked: Shopify
orders/paid for two bottles of cleanser schedules the bundled repurchase reminder two use cycles
later; a refunds/create ends it; a customer who replied TD by SMS is skipped as opted out; the
others get the reminder through Aliyun SendSms."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from pydantic import SecretStr
from sqlalchemy import select

from smr.models import Delivery, Event, Run
from smr.runtime import Runtime, build_runtime
from tests.adapters import sms_fake
from tests.conftest import BUNDLED, make_settings
from tests.helpers import INGEST, FakeClock, auth, consent_event

SHOPIFY_SECRET = "shpss_test_secret"
SMS_TOKEN = "sms-push-token"
SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks" / "shopify"
CUSTOMERS = {"A": "+86 138 0013 8000", "B": "13911113333", "C": "13700137000"}


@pytest.fixture
def playbooks_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "playbooks"
    folder.mkdir()
    for name in ("repurchase-reminder.yaml", "policies.yaml"):
        shutil.copy(BUNDLED / name, folder / name)
    return folder


@pytest.fixture
async def runtime(
    database_url: str, playbooks_dir: Path, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Runtime]:
    secrets = {"shopify": SecretStr(SHOPIFY_SECRET), "sms_aliyun": SecretStr(SMS_TOKEN)}
    settings = make_settings(
        database_url,
        playbooks_dir,
        tmp_path / "data",
        webhook_secrets=secrets,
        sms=sms_fake.settings("aliyun"),
    )
    rt = build_runtime(settings, clock=clock)
    yield rt
    await rt.aclose()


def paid_order(who: str, clock: FakeClock) -> dict[str, Any]:
    """Shopify's sample order, paid by customer ``who`` for two bottles of cleanser."""
    order: dict[str, Any] = json.loads((SAMPLES / "order.json").read_text())
    number = 1000 + ord(who)
    line = copy.deepcopy(order["line_items"][0])
    line.update(sku="FACE-WASH", title="洗面奶", name="洗面奶", quantity=2, price="99.00")
    order.update(
        id=number,
        name=f"#{number}",
        financial_status="paid",
        processed_at=clock.now.isoformat(),
        total_price="198.00",
        currency="CNY",
        line_items=[line],
    )
    order["customer"].update(id=9000 + ord(who), first_name=who, last_name="", phone=CUSTOMERS[who])
    return order


def refund_of(order: dict[str, Any]) -> dict[str, Any]:
    """Shopify's sample refund, of ``order``'s cleanser."""
    refund: dict[str, Any] = json.loads((SAMPLES / "refund.json").read_text())
    refund["order_id"] = order["id"]
    refund["refund_line_items"] = refund["refund_line_items"][:1]
    refund["refund_line_items"][0]["line_item"].update(sku="FACE-WASH", title="洗面奶")
    for transaction in refund["transactions"]:
        transaction["currency"] = "CNY"
    return refund


async def shopify(
    client: httpx.AsyncClient, topic: str, body: dict[str, Any], delivery: str
) -> dict[str, Any]:
    raw = json.dumps(body).encode()
    mac = hmac.new(SHOPIFY_SECRET.encode(), raw, hashlib.sha256).digest()
    headers = {
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": base64.b64encode(mac).decode(),
        "X-Shopify-Webhook-Id": delivery,
        "X-Shopify-Shop-Domain": "demo.myshopify.com",
        "Content-Type": "application/json",
    }
    response = await client.post("/v1/webhooks/shopify", content=raw, headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def reminders(runtime: Runtime) -> dict[str, tuple[Run, list[Delivery]]]:
    """Each customer's repurchase run and its deliveries, by the customer's letter."""
    async with runtime.sessions() as session:
        stmt = (
            select(Run, Event.data["order_id"].as_string())
            .join(Event, Event.id == Run.trigger_event_id)
            .where(Run.playbook_id == "repurchase-reminder")
        )
        found = {}
        for run, order_id in (await session.execute(stmt)).all():
            rows = await session.scalars(select(Delivery).where(Delivery.run_id == run.id))
            found[chr(int(order_id) - 1000)] = (run, list(rows))
        return found


@pytest.mark.respx(assert_all_called=False)
async def test_shopify_orders_drive_sms_reminders_refunds_and_opt_outs(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock, respx_mock: respx.MockRouter
) -> None:
    send_sms = sms_fake.aliyun_route(respx_mock).mock(return_value=sms_fake.aliyun_ok())
    for who in ("A", "B"):  # agreed to marketing SMS when they signed up
        consent = consent_event(f"consent-{who}", phone=CUSTOMERS[who])
        assert (await client.post("/v1/events", json=consent, headers=auth(INGEST))).is_success
    orders = {who: paid_order(who, clock) for who in CUSTOMERS}
    for who, order in orders.items():
        answer = await shopify(client, "orders/paid", order, f"wh-paid-{who}")
        assert answer["status"] == "accepted"
    # Shopify retries, and also reports the payment as orders/create: one payment all the same.
    again = await shopify(client, "orders/create", orders["A"], "wh-create-A")
    assert again["status"] == "duplicate"

    started = await reminders(runtime)
    assert sorted(started) == ["A", "B", "C"]
    for run, _ in started.values():
        assert (run.status, run.wake_at) == ("waiting", clock.now + timedelta(days=2 * 25))

    await shopify(client, "refunds/create", refund_of(orders["C"]), "wh-refund-C")
    reply = [{"phone_number": "13911113333", "content": "TD", "sequence_id": 77}]
    pushed = await client.post(
        "/v1/webhooks/sms/aliyun", params={"token": SMS_TOKEN}, content=json.dumps(reply)
    )
    assert pushed.json()["code"] == 0

    clock.advance(days=50)
    await runtime.tick()

    done = await reminders(runtime)
    run_a, (sms_a,) = done["A"]
    assert (run_a.status, sms_a.channel, sms_a.status) == ("completed", "sms", "sent")
    _, (sms_b,) = done["B"]
    assert (sms_b.status, sms_b.skip_reason) == ("skipped", "opted_out")
    run_c, deliveries_c = done["C"]
    assert (run_c.status, deliveries_c) == ("exited", [])

    (call,) = send_sms.calls
    sent = sms_fake.form(call)
    assert sent["PhoneNumbers"] == "13800138000"
    assert sent["TemplateCode"] == "SMS_000000001"
    assert json.loads(sent["TemplateParam"]) == {"name": "A", "product": "洗面奶"}
    assert sent["SignName"] == sms_fake.SIGN
