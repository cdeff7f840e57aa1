"""Lag under a steady rate: ``smr api`` and one ``smr worker`` running, events sent open-loop.

The events' lags are read from the database afterwards: processing (``processed_at -
received_at``) and accepted to sent on the mock channel. Meanwhile the RSS of both processes
is sampled every few seconds, and the API's ``/metrics`` (backlog, lag of the oldest).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx

from bench.harness.common import BenchError, log
from bench.harness.db import database_of
from bench.harness.openloop import OpenLoopResult, open_loop
from bench.harness.procfs import RssSampler, server_meter
from bench.harness.servers import INGEST_TOKEN, Server, metric_values, smr_api, smr_worker
from bench.harness.workload import EventFactory, encode
from bench.process_db import Activity, lags, outcome_counts, progress, sample_activity

HEADERS = {"content-type": "application/json", "authorization": f"Bearer {INGEST_TOKEN}"}
BACKLOG_METRICS = ("smr_event_backlog", "smr_event_lag_seconds")
PROCESSED_METRIC = "smr_events_processed_total"
#: The API's /metrics counts rows by status in big tables: read it this seldom.
GAUGE_SECONDS = 5.0
#: Memory is flat when the end is within this of the value after warm-up.
RSS_MARGIN_MIB = 16.0


@dataclass(frozen=True)
class LagPlan:
    events_per_s: float
    per_request: int
    seconds: float
    warmup_seconds: float
    rss_interval: float
    drain_timeout: float
    contacts: int
    seed: int


@dataclass
class LagResult:
    plan: LagPlan
    driven: OpenLoopResult
    cpu: dict[str, float | None]
    rss: dict[str, list[tuple[float, float]]]
    gauges: list[tuple[float, dict[str, float]]]
    activity: Activity
    drained_after: float | None
    lags: dict[str, Any]
    outcome: dict[str, Any]
    processed_metric: dict[str, float]
    problems: list[str] = field(default_factory=list)

    def memory(self) -> dict[str, dict[str, float | bool | None]]:
        """Per process: RSS at start, after warm-up, at the end and at most; flat or not."""
        return {
            name: memory_summary(samples, warmup=self.plan.warmup_seconds)
            for name, samples in self.rss.items()
        }


def memory_summary(
    samples: list[tuple[float, float]], *, warmup: float
) -> dict[str, float | bool | None]:
    if not samples:
        return {"start": None, "after_warmup": None, "end": None, "max": None, "flat": None}
    after = next((mib for at, mib in samples if at >= warmup), samples[-1][1])
    end = samples[-1][1]
    return {
        "start": samples[0][1],
        "after_warmup": after,
        "end": end,
        "max": max(mib for _, mib in samples),
        "flat": end <= after + RSS_MARGIN_MIB,
    }


def body_maker(factory: EventFactory, per_request: int) -> Any:
    if per_request == 1:
        return lambda: encode(factory.event())
    return lambda: encode({"events": [factory.event() for _ in range(per_request)]})


async def gauge_sampler(
    url: str, interval: float, into: list[tuple[float, dict[str, float]]]
) -> None:
    """The API's backlog gauges every ``interval`` seconds until cancelled."""
    began = time.perf_counter()
    async with httpx.AsyncClient(timeout=5.0) as client:
        while True:
            try:
                response = await client.get(url)
                values = metric_values(response.text, *BACKLOG_METRICS)
            except httpx.HTTPError:
                values = {}
            into.append((round(time.perf_counter() - began, 1), values))
            await asyncio.sleep(interval)


async def samplers(
    metrics_url: str,
    dsn: str,
    gauges: list[tuple[float, dict[str, float]]],
    activity: Activity,
) -> None:
    """The API's gauges and pg_stat_activity, until cancelled."""
    await asyncio.gather(
        gauge_sampler(metrics_url, GAUGE_SECONDS, gauges), sample_activity(dsn, activity)
    )


async def drain(dsn: str, *, expected: int, give_up_after: float) -> float | None:
    """Seconds until the log is empty and ``expected`` mock sends are made; None: gave up."""
    conn = await asyncpg.connect(dsn)
    try:
        began = time.perf_counter()
        while (at := time.perf_counter() - began) < give_up_after:
            now = await progress(conn)
            if now.pending == 0 and now.sent >= expected:
                return round(at, 2)
            await asyncio.sleep(0.25)
        return None
    finally:
        await conn.close()


async def read_lags(dsn: str, *, skip_seconds: float) -> tuple[dict[str, Any], dict[str, Any]]:
    conn = await asyncpg.connect(dsn)
    try:
        return await lags(conn, skip_seconds=skip_seconds), await outcome_counts(conn)
    finally:
        await conn.close()


def processed_total(worker: Server) -> dict[str, float]:
    """The worker's own count of the events it processed, by outcome."""
    try:
        text = httpx.get(worker.base_url + "/metrics", timeout=5.0).text
    except httpx.HTTPError:
        return {}
    return metric_values(text, PROCESSED_METRIC)


def start_both(env: dict[str, str], tmp: Path, started: list[Server]) -> tuple[Server, Server]:
    api = smr_api(env, tmp)
    started.append(api)
    api.start()
    api.wait_ready()  # it migrates first: the worker starts on the schema
    worker = smr_worker(env, tmp)
    started.append(worker)
    worker.start()
    worker.wait_ready()
    return api, worker


def measure_lag(
    plan: LagPlan, *, env: dict[str, str], dsn: str, tmp: Path, started: list[Server]
) -> LagResult:
    """The phase, on an empty database; servers started are put in ``started``."""
    api, worker = start_both(env, tmp, started)
    assert api.pid is not None
    assert worker.pid is not None
    factory = EventFactory(run="lag", contacts=plan.contacts, seed=plan.seed)
    gauges: list[tuple[float, dict[str, float]]] = []
    activity = Activity()
    rss = RssSampler({"api": api.pid, "worker": worker.pid}, interval=plan.rss_interval)
    database = database_of(dsn)
    processes = {"api": api.cpu_seconds, "worker": worker.cpu_seconds}
    meter = server_meter(processes, database, this="client")
    log(
        f"lag: {plan.events_per_s:,.0f} events/s in requests of {plan.per_request} "
        f"for {plan.seconds:.0f} s"
    )
    rss.start()
    meter.start()
    driven = asyncio.run(
        open_loop(
            api.base_url + "/v1/events",
            headers=HEADERS,
            body=body_maker(factory, plan.per_request),
            requests_per_s=plan.events_per_s / plan.per_request,
            seconds=plan.seconds,
            beside=lambda: samplers(api.base_url + "/metrics", dsn, gauges, activity),
        )
    )
    cpu = meter.stop()
    rss.stop()
    for name, server in (("api", api), ("worker", worker)):
        if server.process is not None and server.process.poll() is not None:
            raise BenchError(f"{name} exited during the run:\n{server.log_tail()}")
    expected = driven.answered * plan.per_request
    log(f"lag: sent; waiting for {expected:,} events to be processed and sent")
    drained = asyncio.run(drain(dsn, expected=expected, give_up_after=plan.drain_timeout))
    found, outcome = asyncio.run(read_lags(dsn, skip_seconds=plan.warmup_seconds))
    return LagResult(
        plan=plan,
        driven=driven,
        cpu=cpu,
        rss=rss.samples,
        gauges=gauges,
        activity=activity,
        drained_after=drained,
        lags=found,
        outcome=outcome,
        processed_metric=processed_total(worker),
        problems=api.log_problems() + worker.log_problems(),
    )
