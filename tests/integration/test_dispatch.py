"""The dispatcher on a real database: claims, sends, retries, failures, attempts, trace."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import ClassVar

import httpx
import pytest
from sqlalchemy import func, select

from smr.channels import (
    Capabilities,
    OutboundMessage,
    PermanentSendError,
    RetriableSendError,
    SendResult,
    SkippedSend,
)
from smr.models import Delivery, DeliveryAttempt, MockOutbox
from smr.runtime import Runtime
from smr.services.dispatch import Dispatcher
from smr.statuses import SkipReason
from smr.telemetry import Telemetry
from tests.helpers import INGEST, FakeClock, auth, order_event
from tests.integration.journeys import dispatching_through


class ScriptedAdapter:
    """Answers each send with the next scripted outcome."""

    name: ClassVar[str] = "scripted"
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, *script: Exception | None) -> None:
        self.script = list(script)
        self.sent: list[OutboundMessage] = []

    async def send(self, message: OutboundMessage) -> SendResult:
        outcome = self.script.pop(0) if self.script else None
        if outcome is not None:
            raise outcome
        self.sent.append(message)
        return SendResult(vendor_message_id="v-1", response="ok")

    async def aclose(self) -> None:
        return None


def route_all(
    runtime: Runtime,
    adapter: ScriptedAdapter,
    *,
    draw: Callable[[], float] = random.random,
    telemetry: Telemetry | None = None,
) -> Dispatcher:
    """A dispatcher sending every channel through ``adapter``, and the runtime's processor
    sending through it what the events it processes make due at once."""
    routes = dict.fromkeys(runtime.routes, adapter)
    dispatcher = Dispatcher(
        sessions=runtime.sessions,
        routes=routes,
        catalog=runtime.catalog,
        settings=runtime.settings,
        clock=runtime.clock,
        telemetry=telemetry,
        draw=draw,
    )
    runtime.processor = dispatching_through(runtime, dispatcher)
    return dispatcher


async def only_delivery(runtime: Runtime) -> Delivery:
    async with runtime.sessions() as session:
        return (await session.scalars(select(Delivery))).one()


async def post_order(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/events", json=order_event("o-1"), headers=auth(INGEST))
    assert response.status_code == 202


async def test_mock_send_lands_in_outbox_and_run_log(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await post_order(client)  # processed, and its thank-you sent at once

    outbox = (await client.get("/v1/mock/outbox", headers=auth())).json()["items"]
    assert [m["text"] for m in outbox] == ["小王，感谢您在某某旗舰店下单（订单 order-o-1，¥99）！"]
    assert outbox[0]["recipient"] == {"phone": "13800000000"}
    delivery = await only_delivery(runtime)
    assert (delivery.status, delivery.attempts) == ("sent", 1)
    run = (await client.get(f"/v1/runs/{delivery.run_id}", headers=auth())).json()
    assert [t["kind"] for t in run["trace"]] == [
        "start",
        "tag",
        "branch",
        "send",
        "end",
        "delivery",
    ]
    assert run["deliveries"][0]["attempt_log"][0]["outcome"] == "sent"
    assert await runtime.dispatcher.tick() == 0


async def test_retriable_failures_back_off_then_send(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    adapter = ScriptedAdapter(RetriableSendError("429 busy"), RetriableSendError("502"))
    dispatcher = route_all(runtime, adapter, draw=lambda: 0.75)  # the jitter drawn
    await post_order(client)  # the first try, as the order is processed

    first_retry = await only_delivery(runtime)
    assert first_retry.status == "scheduled"
    base = runtime.settings.retry_base_seconds
    assert (first_retry.due_at - clock.now).total_seconds() == 0.75 * base
    assert await dispatcher.tick() == 0  # not due yet

    clock.advance(seconds=base)
    await dispatcher.tick()
    second_retry = await only_delivery(runtime)
    assert (second_retry.due_at - clock.now).total_seconds() == 0.75 * 2 * base

    clock.advance(seconds=60)
    await dispatcher.tick()
    sent = await only_delivery(runtime)
    assert (sent.status, sent.attempts, len(adapter.sent)) == ("sent", 3, 1)
    async with runtime.sessions() as session:
        outcomes = (await session.scalars(select(DeliveryAttempt.outcome))).all()
    assert sorted(outcomes) == ["retry", "retry", "sent"]


async def post_orders(client: httpx.AsyncClient, count: int) -> None:
    batch = {"events": [order_event(f"o-{i}", phone=f"1380000{i:04d}") for i in range(count)]}
    assert (await client.post("/v1/events", json=batch, headers=auth(INGEST))).status_code == 202


async def retry_delays(runtime: Runtime) -> list[float]:
    async with runtime.sessions() as session:
        rows = (await session.scalars(select(Delivery))).all()
    assert {d.status for d in rows} == {"scheduled"}
    return sorted((d.due_at - runtime.clock()).total_seconds() for d in rows)


async def test_retries_spread_with_full_jitter_from_a_seeded_draw(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    """Deliveries that failed together come back spread over [0, base·2^(n−1)), not at once;
    the draws are the seeded generator's, so the times are known in advance."""
    failures = [RetriableSendError("503") for _ in range(20)]
    route_all(runtime, ScriptedAdapter(*failures), draw=random.Random(18).random)

    await post_orders(client, 20)  # the first tries, as the orders are processed

    base = runtime.settings.retry_base_seconds
    delays = await retry_delays(runtime)
    drawn = random.Random(18)
    assert delays == pytest.approx(sorted(base * drawn.random() for _ in range(20)), abs=1e-6)
    assert all(0 <= d < base for d in delays)
    assert len(set(delays)) == 20


@pytest.mark.parametrize(
    ("retry_after", "draw", "expected"),
    [
        (30.0, 0.5, 30.0),  # the vendor's wait beats the jitter
        (0.5, 0.75, 1.5),  # the jitter beats a shorter one
        (900.0, 0.5, 900.0),  # the vendor's wait counts beyond the cap (600 s)
    ],
)
async def test_a_vendors_retry_after_is_a_floor(
    client: httpx.AsyncClient, runtime: Runtime, retry_after: float, draw: float, expected: float
) -> None:
    failure = RetriableSendError("45009 busy", retry_after=retry_after)
    route_all(runtime, ScriptedAdapter(failure), draw=lambda: draw)

    await post_order(client)

    assert await retry_delays(runtime) == [expected]


async def test_retries_stop_at_max_attempts_with_last_vendor_answer(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    failures = [RetriableSendError(f"503 try {i}") for i in range(runtime.settings.max_attempts)]
    dispatcher = route_all(runtime, ScriptedAdapter(*failures))
    await post_order(client)  # the first try

    for _ in range(runtime.settings.max_attempts - 1):
        clock.advance(seconds=runtime.settings.retry_cap_seconds)
        await dispatcher.tick()

    failed = await only_delivery(runtime)
    assert failed.status == "failed"
    assert failed.last_error == f"503 try {runtime.settings.max_attempts - 1}"
    assert await dispatcher.tick() == 0


@pytest.mark.parametrize(
    ("error", "status", "reason"),
    [
        (PermanentSendError("40003 invalid userid"), "failed", None),
        (SkippedSend(SkipReason.MISSING_IDENTITY), "skipped", "missing_identity"),
    ],
)
async def test_permanent_and_skipped_are_final(
    client: httpx.AsyncClient,
    runtime: Runtime,
    error: Exception,
    status: str,
    reason: str | None,
) -> None:
    route_all(runtime, ScriptedAdapter(error))

    await post_order(client)

    delivery = await only_delivery(runtime)
    assert (delivery.status, delivery.skip_reason, delivery.attempts) == (status, reason, 1)


async def due_again(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock, count: int
) -> None:
    """``count`` deliveries ``scheduled`` and due, for claims to take: their first tries, as
    their orders were processed, failed and were put back."""
    route_all(runtime, ScriptedAdapter(*(RetriableSendError("503") for _ in range(count))))
    await post_orders(client, count)
    assert len(await retry_delays(runtime)) == count
    clock.advance(seconds=runtime.settings.retry_cap_seconds)


async def test_concurrent_dispatchers_never_send_a_delivery_twice(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    await due_again(client, runtime, clock, 120)
    adapters = [ScriptedAdapter(), ScriptedAdapter(), ScriptedAdapter()]

    await asyncio.gather(*(route_all(runtime, a).tick() for a in adapters))

    sent = [m.delivery_id for a in adapters for m in a.sent]
    assert len(sent) == 120
    assert len(set(sent)) == 120


async def test_mock_outbox_dedupes_a_resend(client: httpx.AsyncClient, runtime: Runtime) -> None:
    await post_order(client)  # sent as it is processed
    delivery = await only_delivery(runtime)
    mock = runtime.routes["mock"]
    message = OutboundMessage(
        delivery_id=delivery.id,
        channel="wecom",
        category="service",
        contact_id=delivery.contact_id,
        recipient={},
        text=delivery.text,
    )

    result = await mock.send(message)

    assert result.response == "already recorded (resend deduplicated)"
    async with runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(MockOutbox)) == 1


async def test_a_claim_takes_at_most_its_limit(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    from datetime import timedelta

    from smr.db import unit_of_work
    from smr.repositories import deliveries as repo

    await due_again(client, runtime, clock, 50)

    async with unit_of_work(runtime.sessions) as session:
        first = await repo.claim_due(
            session, now=runtime.clock(), lease=timedelta(seconds=60), limit=10, resendable=[]
        )
        second = await repo.claim_due(
            session, now=runtime.clock(), lease=timedelta(seconds=60), limit=100, resendable=[]
        )

    assert len(first) == 10
    assert len(second) == 40
    assert not {r.id for r in first} & {r.id for r in second}


async def test_a_delivery_due_as_it_is_made_is_sent_by_its_processor_without_a_claim(
    client: httpx.AsyncClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smr.repositories import deliveries as repo

    async def no_claim(*_: object, **__: object) -> None:
        raise AssertionError("a delivery due as it is made is written claimed")

    monkeypatch.setattr(repo, "claim_due", no_claim)

    await post_order(client)

    delivery = await only_delivery(runtime)
    assert (delivery.status, delivery.attempts, delivery.sent_at) == ("sent", 1, runtime.clock())
    assert delivery.lease_until is None
    async with runtime.sessions() as session:
        outcomes = (await session.scalars(select(DeliveryAttempt.outcome))).all()
    assert outcomes == ["sent"]
