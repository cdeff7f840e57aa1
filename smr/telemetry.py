"""What one process measures of its own work: how long ingest takes to answer, claims and
vendor calls take, how sends turned out, and whether its ticker still ticks.

Each ``Runtime`` builds its own ``Telemetry`` with its own ``CollectorRegistry`` (never
prometheus_client's global one: a test builds many runtimes in one process, and nothing
observed by one may show in another). Counts that every process shares (rows by status) are
read from the database when scraped instead (``smr.services.metrics``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.context_managers import Timer
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

#: Seconds, from a millisecond (a claim on an idle SQLite) to the longest a send may take.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Endpoint(StrEnum):
    """Where events come in (``smr_ingest_seconds``)."""

    EVENTS = "events"  # POST /v1/events
    WEBHOOKS = "webhooks"  # POST /v1/webhooks/{source}, /v1/webhooks/sms/{provider}
    WECOM = "wecom"  # POST /v1/wecom/callback


class ClaimKind(StrEnum):
    """What a claim takes (``smr_claim_seconds``)."""

    DELIVERIES = "deliveries"
    RUNS = "runs"


class TickOutcome(StrEnum):
    OK = "ok"
    FAILED = "failed"


@dataclass(frozen=True)
class Liveness:
    """The ticker as ``/healthz`` reports it."""

    alive: bool
    detail: str
    seconds_since_tick: float | None
    last_tick_ok: bool | None


class Heartbeat:
    """When the ticker started, and when it last finished a tick (with or without an error:
    a failed tick is logged and counted, and the ticker goes on). A ticker that stopped, or
    whose tick hangs, is not alive."""

    def __init__(self) -> None:
        self._started: datetime | None = None
        self._last: datetime | None = None
        self._last_ok: bool | None = None

    def start(self, now: datetime) -> None:
        self._started, self._last, self._last_ok = now, None, None

    def stop(self) -> None:
        self._started = None

    def beat(self, now: datetime, *, ok: bool) -> None:
        self._last, self._last_ok = now, ok

    def liveness(self, now: datetime, *, stale: timedelta) -> Liveness:
        since = None if self._last is None else (now - self._last).total_seconds()
        if self._started is None:
            return Liveness(False, "the ticker is not running", since, self._last_ok)
        quiet = now - (self._last or self._started)
        if quiet > stale:
            what = "no tick has finished" if self._last is None else "the last tick finished"
            detail = f"{what} {quiet.total_seconds():.0f} s ago (limit {stale.total_seconds():g} s)"
            return Liveness(False, detail, since, self._last_ok)
        return Liveness(True, "ticking", since, self._last_ok)


class Telemetry:
    """The instruments of one process, in ``registry``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.heartbeat = Heartbeat()
        r, b = self.registry, LATENCY_BUCKETS
        self.ingest = Histogram(
            "smr_ingest_seconds",
            "Time from an ingest request's arrival to its answer, by endpoint.",
            ["endpoint"],
            registry=r,
            buckets=b,
        )
        self.claim = Histogram(
            "smr_claim_seconds",
            "Time the statement claiming due rows takes, by kind.",
            ["kind"],
            registry=r,
            buckets=b,
        )
        self.vendor_call = Histogram(
            "smr_vendor_call_seconds",
            "Time a call to a channel's vendor takes, by channel.",
            ["channel"],
            registry=r,
            buckets=b,
        )
        self.sends = Counter(
            "smr_sends",
            "Deliveries handed to a channel, by channel and outcome "
            "(sent, awaiting, skipped, failed: permanent, retry: retriable).",
            ["channel", "outcome"],
            registry=r,
        )
        self.ticks = Counter(
            "smr_ticks", "Scheduler ticks finished, by outcome.", ["outcome"], registry=r
        )
        self.processed = Counter(
            "smr_events_processed",
            "Events this process took from the log and processed, by outcome "
            "(processed; failed: an event that failed alone, marked failed).",
            ["outcome"],
            registry=r,
        )
        self.batch = Histogram(
            "smr_process_batch_seconds",
            "Time a processor's batch transaction takes, from its first statement to commit.",
            registry=r,
            buckets=b,
        )

    def timed_claim(self, kind: ClaimKind) -> Timer:
        return self.claim.labels(kind).time()

    @contextmanager
    def timed_call(self, channels: Collection[str]) -> Iterator[None]:
        """Time one vendor call; a batch call carries every channel in ``channels``."""
        started = time.perf_counter()
        try:
            yield
        finally:
            took = time.perf_counter() - started
            for channel in channels:
                self.vendor_call.labels(channel).observe(took)

    def count_send(self, channel: str, outcome: str) -> None:
        self.sends.labels(channel, outcome).inc()

    @contextmanager
    def ticking(self, clock: Callable[[], datetime]) -> Iterator[None]:
        """One scheduler tick: the heartbeat and ``smr_ticks_total`` record how it ended (an
        error is recorded, then raised; a cancelled tick did not finish)."""
        try:
            yield
        except Exception:
            self._finished(clock(), TickOutcome.FAILED)
            raise
        self._finished(clock(), TickOutcome.OK)

    def _finished(self, now: datetime, outcome: TickOutcome) -> None:
        self.heartbeat.beat(now, ok=outcome == TickOutcome.OK)
        self.ticks.labels(outcome).inc()


def exposition(*collectors: Collector, accept: str) -> tuple[bytes, str]:
    """``collectors`` rendered as the scraper's ``Accept`` header asks (OpenMetrics for
    Prometheus, else the text format 0.0.4); returns the body and its content type."""
    registry = CollectorRegistry()
    for collector in collectors:
        registry.register(collector)
    encode, content_type = choose_encoder(accept)
    return encode(registry), content_type
