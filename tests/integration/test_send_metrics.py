"""What the dispatcher counts and times per channel, for every outcome of a vendor call."""

from __future__ import annotations

import httpx

from smr.channels import PermanentSendError, RetriableSendError
from smr.runtime import Runtime
from smr.telemetry import Telemetry
from tests.helpers import INGEST, FakeClock, auth, order_event
from tests.integration.test_dispatch import ScriptedAdapter, route_all


async def test_sends_are_counted_per_channel_and_outcome(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    adapter = ScriptedAdapter(RetriableSendError("429 busy"), PermanentSendError("40003"))
    telemetry = Telemetry()
    dispatcher = route_all(runtime, adapter, telemetry=telemetry)
    value = telemetry.registry.get_sample_value
    await client.post("/v1/events", json=order_event("o-1"), headers=auth(INGEST))

    # Sent as the order was processed: 429, retried later.
    assert value("smr_sends_total", {"channel": "wecom", "outcome": "retry"}) == 1

    clock.advance(seconds=runtime.settings.retry_base_seconds)
    await dispatcher.tick()  # 40003: failed for good
    await client.post("/v1/events", json=order_event("o-2"), headers=auth(INGEST))  # sent

    assert {
        outcome: value("smr_sends_total", {"channel": "wecom", "outcome": outcome})
        for outcome in ("retry", "failed", "sent")
    } == {"retry": 1, "failed": 1, "sent": 1}
    assert value("smr_vendor_call_seconds_count", {"channel": "wecom"}) == 3
    assert value("smr_sends_total", {"channel": "sms", "outcome": "sent"}) is None
