"""Playbooks and helpers for the journey tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from smr.models import Delivery, MockOutbox, Run
from smr.runtime import Runtime
from smr.schemas import parse_events
from smr.services.dispatch import Claimed, Dispatcher
from smr.services.processor import Processor
from tests.helpers import INGEST, auth

POLICIES = """\
timezone: Asia/Shanghai
quiet_hours: {from: "21:30", to: "09:00"}
frequency_caps: [{max: 1, per: 1d}]
on_cap: %(on_cap)s
vars: {shop_url: "https://example.com"}
"""

REPURCHASE = """\
id: repurchase
name: 回购提醒
mode: %(mode)s
trigger:
  event: order.paid
steps:
  - send: {channel: wecom, category: service, text: "thanks {{ event.data.order_id }}"}
  - wait: "{{ 25 * event.quantity_of('FACE-WASH') }}d"
  - send: {channel: wecom, category: marketing, text: "time to rebuy"}
exit_on:
  - event: order.refunded
    if: "event.data.order_id == trigger.data.order_id"
"""

SOP = """\
id: sop
name: 加好友 SOP
mode: parallel
trigger:
  event: contact.added
steps:
  - send: {channel: wecom_welcome, category: service, text: "welcome"}
  - wait: 3d
  - send: {channel: wecom, category: marketing, text: "day 3 tip"}
  - wait: {until: "10:00"}
  - send: {channel: sms, category: service, text: "day 4 reminder"}
"""

BAD_WAIT = """\
id: bad-wait
name: bad wait
trigger:
  event: chat.message
steps:
  - wait: "{{ event.data.text }}"
  - send: {channel: mock, text: never}
"""


PROMOS = """\
id: promo-%(channel)s-%(category)s
name: promo
mode: parallel
trigger:
  event: chat.message
  keywords: ["%(channel)s-%(category)s"]
steps:
  - send: {channel: %(channel)s, category: %(category)s, text: "%(channel)s %(category)s"}
"""


def write_playbooks(folder: Path, *, on_cap: str = "skip", mode: str = "restart") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "policies.yaml").write_text(POLICIES % {"on_cap": on_cap})
    (folder / "repurchase.yaml").write_text(REPURCHASE % {"mode": mode})
    (folder / "sop.yaml").write_text(SOP)
    (folder / "bad-wait.yaml").write_text(BAD_WAIT)
    for channel in ("wecom", "sms"):
        for category in ("marketing", "service"):
            values = {"channel": channel, "category": category}
            (folder / f"promo-{channel}-{category}.yaml").write_text(PROMOS % values)
    return folder


def event(key: str, kind: str, *, phone: str = "13800000000", **data: Any) -> dict[str, Any]:
    return {
        "id": key,
        "type": kind,
        "occurred_at": "2026-11-23T10:00:00+08:00",
        "contact": {"phone": phone},
        "data": data,
    }


def order(key: str, order_id: str, *, quantity: int = 1, refund: bool = False) -> dict[str, Any]:
    items = [{"sku": "FACE-WASH", "name": "洗面奶", "quantity": quantity, "price": 50}]
    kind = "order.refunded" if refund else "order.paid"
    return event(key, kind, order_id=order_id, total=50 * quantity, items=items)


async def post(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/v1/events", json=body, headers=auth(INGEST))
    assert response.status_code == 202, response.text
    result: dict[str, Any] = response.json()
    return result


async def deliveries(runtime: Runtime) -> list[Delivery]:
    async with runtime.sessions() as session:
        return list((await session.scalars(select(Delivery).order_by(Delivery.created_at))).all())


async def runs(runtime: Runtime) -> list[Run]:
    async with runtime.sessions() as session:
        return list((await session.scalars(select(Run).order_by(Run.started_at))).all())


async def outbox_texts(runtime: Runtime) -> list[str | None]:
    async with runtime.sessions() as session:
        rows = await session.scalars(select(MockOutbox).order_by(MockOutbox.sent_at))
        return [r.text for r in rows]


class DiesBeforeSending(Dispatcher):
    """The dispatcher of a processor killed right after its batch committed: the deliveries
    due at once are stored claimed (``sending`` under a lease) and gated, and nothing was
    sent."""

    async def send(self, batch: Sequence[Claimed]) -> int:
        assert batch
        return 0


def dispatching_through(runtime: Runtime, dispatcher: Dispatcher) -> Processor:
    """A processor for ``runtime``'s log whose deliveries due at once ``dispatcher`` gates and
    sends."""
    return Processor(
        runtime.sessions,
        catalog=runtime.catalog,
        settings=runtime.settings.ingest,
        clock=runtime.clock,
        telemetry=runtime.telemetry,
        dispatcher=dispatcher,
    )


async def process_without_sending(runtime: Runtime, body: dict[str, Any]) -> None:
    """Accept ``body``'s events and process them as a worker would that dies before it sends
    what they made due (``DiesBeforeSending``); its partitions pass on, as when their lease
    ends."""
    events = parse_events(body)
    await runtime.ingest(events, source="api")
    dies = DiesBeforeSending(
        sessions=runtime.sessions,
        routes=runtime.routes,
        catalog=runtime.catalog,
        settings=runtime.settings,
        clock=runtime.clock,
    )
    processor = dispatching_through(runtime, dies)
    assert (await processor.drain()).events == len(events)
    await processor.owner.leave()
