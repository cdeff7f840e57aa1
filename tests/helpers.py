"""Helpers shared by the tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from smr.runtime import Runtime

ADMIN, INGEST = "test-admin-token", "test-ingest-token"


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def auth(token: str = ADMIN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def contact_of(client: httpx.AsyncClient, answer: dict[str, Any]) -> str:
    """The contact an accepted event resolved to, read from ``GET /v1/events/{event_id}`` once
    it is processed (the ingest answer does not know it)."""
    detail = await client.get(f"/v1/events/{answer['event_id']}", headers=auth())
    assert detail.status_code == 200, detail.text
    event = detail.json()
    assert event["status"] == "processed", event
    contact_id = event["contact_id"]
    assert isinstance(contact_id, str), event
    return contact_id


def order_event(
    key: str, *, phone: str = "13800000000", total: float = 99, **data: Any
) -> dict[str, Any]:
    return {
        "id": key,
        "type": "order.paid",
        "occurred_at": "2026-11-23T10:00:00+08:00",
        "contact": {"phone": phone, "name": "小王"},
        "data": {
            "order_id": f"order-{key}",
            "total": total,
            "currency": "CNY",
            "items": [{"sku": "FACE-WASH", "name": "洗面奶", "quantity": 2, "price": total / 2}],
            **data,
        },
    }


def consent_event(
    key: str, *, phone: str = "13800000000", channel: str = "sms", source: str = "小程序注册页"
) -> dict[str, Any]:
    """The customer agreed to marketing on ``channel`` (as a shop posts it)."""
    return {
        "id": key,
        "type": "contact.consented",
        "occurred_at": "2026-11-20T10:00:00+08:00",
        "contact": {"phone": phone},
        "data": {"channel": channel, "source": source, "wording": "同意接收优惠活动短信"},
    }


def keeping_up(runtime: Runtime) -> dict[str, list[Callable[[httpx.Response], Awaitable[None]]]]:
    """httpx event hooks that process the events accepted so far after each answer (as a
    worker would, shortly after), before the test reads on."""

    async def processed(_response: httpx.Response) -> None:
        await runtime.process_pending()

    return {"response": [processed]}
