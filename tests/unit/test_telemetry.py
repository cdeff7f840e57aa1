"""Telemetry without a database: which requests count as ingest, the heartbeat's verdicts,
and registries that stay apart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from smr.api.timing import endpoint_of
from smr.telemetry import Endpoint, Heartbeat, Telemetry, exposition

T0 = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
STALE = timedelta(seconds=300)


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/v1/events", Endpoint.EVENTS),
        ("POST", "/v1/events/", Endpoint.EVENTS),
        ("GET", "/v1/events/evt-1", None),
        ("POST", "/v1/webhooks/shopify", Endpoint.WEBHOOKS),
        ("POST", "/v1/webhooks/sms/aliyun", Endpoint.WEBHOOKS),
        ("POST", "/v1/wecom/callback", Endpoint.WECOM),
        ("GET", "/v1/wecom/callback", None),  # URL verification, not an event
        ("POST", "/v1/playbooks/reload", None),
        ("GET", "/metrics", None),
    ],
)
def test_which_requests_are_ingest(method: str, path: str, expected: Endpoint | None) -> None:
    assert endpoint_of({"type": "http", "method": method, "path": path}) == expected


def test_heartbeat_alive_from_start_until_no_tick_finishes_within_the_limit() -> None:
    beat = Heartbeat()
    assert beat.liveness(T0, stale=STALE).detail == "the ticker is not running"

    beat.start(T0)
    assert beat.liveness(T0 + STALE, stale=STALE).alive
    late = beat.liveness(T0 + STALE + timedelta(seconds=1), stale=STALE)
    assert (late.alive, late.detail) == (False, "no tick has finished 301 s ago (limit 300 s)")

    beat.beat(T0 + timedelta(seconds=400), ok=False)  # a failed tick is a finished tick
    found = beat.liveness(T0 + timedelta(seconds=410), stale=STALE)
    assert (found.alive, found.seconds_since_tick, found.last_tick_ok) == (True, 10, False)
    gone = beat.liveness(T0 + timedelta(seconds=701), stale=STALE)
    assert gone.detail == "the last tick finished 301 s ago (limit 300 s)"

    beat.stop()
    assert not beat.liveness(T0 + timedelta(seconds=410), stale=STALE).alive


def test_ticking_counts_ok_and_failed_ticks_and_reraises() -> None:
    telemetry = Telemetry()
    with telemetry.ticking(lambda: T0):
        pass
    with pytest.raises(RuntimeError), telemetry.ticking(lambda: T0):
        raise RuntimeError("tick failed")

    value = telemetry.registry.get_sample_value
    assert value("smr_ticks_total", {"outcome": "ok"}) == 1
    assert value("smr_ticks_total", {"outcome": "failed"}) == 1


def test_each_telemetry_has_its_own_registry_and_none_uses_the_global_one() -> None:
    first, second = Telemetry(), Telemetry()
    first.count_send("sms", "sent")
    with first.timed_call(["sms"]):
        pass

    sent = {"channel": "sms", "outcome": "sent"}
    assert first.registry.get_sample_value("smr_sends_total", sent) == 1
    assert first.registry.get_sample_value("smr_vendor_call_seconds_count", {"channel": "sms"}) == 1
    assert second.registry.get_sample_value("smr_sends_total", sent) is None
    assert REGISTRY.get_sample_value("smr_sends_total", sent) is None
    body, content_type = exposition(second.registry, accept="")
    assert content_type.startswith("text/plain; version=0.0.4")
    assert b"smr_sends_total{" not in body
