"""The closed-loop load driver: a fixed number of requests in flight, a warm-up, then a timed
part whose CPU use (client, server, postgres, rest of the machine) is read from ``/proc``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.harness.common import log
from bench.harness.procfs import CpuMeter, postgres_cpu_seconds
from bench.harness.servers import Server

MAX_FAILURES = 20  # a measurement stops early after this many failed requests


@dataclass
class Measurement:
    name: str
    server: Server
    requests: int
    events: int
    seconds: float
    latencies: list[float]
    cpu: dict[str, float | None]
    failures: list[str] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)  # failed requests by kind, warm-up incl.
    statuses: dict[str, int] = field(default_factory=dict)  # per event, warm-up included
    answered_events: int = 0  # events in requests answered 202, warm-up included

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def percentile_ms(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "events": self.events,
            "seconds": round(self.seconds, 3),
            "requests_per_s": round(self.requests_per_s, 1),
            "events_per_s": round(self.events_per_s, 1),
            "latency_ms": {
                "mean": round(statistics.fmean(self.latencies) * 1000, 2)
                if self.latencies
                else None,
                "p50": round(self.percentile_ms(0.50), 2),
                "p99": round(self.percentile_ms(0.99), 2),
                "max": round(max(self.latencies, default=0.0) * 1000, 2),
            },
            "cpu_cores_used": self.cpu,
            "result_statuses": self.statuses,
            "failed_requests": len(self.failures),
            "errors": self.errors,
            "first_failures": self.failures[:3],
        }


@dataclass
class Driven:
    """What one pass of requests got: wall time, latencies of the answered ones, the bodies of
    those answered 202, the failures (text) and their kinds counted (``HTTP 503``, ``no
    answer``)."""

    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    answers: list[bytes] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def fail(self, kind: str, text: str) -> None:
        self.failures.append(text)
        self.errors[kind] = self.errors.get(kind, 0) + 1


async def drive(clients: Sequence[httpx.AsyncClient], requests: Sequence[httpx.Request]) -> Driven:
    """Send every request, one in flight per client (stops after ``MAX_FAILURES``)."""
    work: Iterator[tuple[int, httpx.Request]] = iter(enumerate(requests))
    driven = Driven()

    async def worker(client: httpx.AsyncClient) -> None:
        for index, request in work:
            if len(driven.failures) >= MAX_FAILURES:
                return
            began = time.perf_counter()
            try:
                response = await client.send(request)
            except httpx.HTTPError as exc:
                driven.fail("no answer", f"request {index}: {type(exc).__name__}: {exc}")
                continue
            driven.latencies.append(time.perf_counter() - began)
            if response.status_code == 202:
                driven.answers.append(response.content)
            else:
                text = f"request {index}: HTTP {response.status_code}: {response.text[:1000]}"
                driven.fail(f"HTTP {response.status_code}", text)

    began = time.perf_counter()
    await asyncio.gather(*(worker(client) for client in clients[: len(requests)]))
    driven.seconds = time.perf_counter() - began
    return driven


def result_statuses(answers: Sequence[bytes], *, batch: bool) -> dict[str, int]:
    """How SMR (or the bare endpoint) classified each event: accepted, duplicate, ..."""
    counts: dict[str, int] = {}
    for answer in answers:
        try:
            body = json.loads(answer)
            results = body["results"] if batch else [body]
            for result in results:
                status = str(result.get("status", "?"))
                counts[status] = counts.get(status, 0) + 1
        except (ValueError, KeyError, TypeError, AttributeError):
            counts["unreadable"] = counts.get("unreadable", 0) + 1
    return counts


async def measure(
    name: str,
    server: Server,
    path: str,
    *,
    warmup: Sequence[bytes],
    timed: Sequence[bytes],
    events_per_request: int,
    concurrency: int,
    headers: dict[str, str],
) -> Measurement:
    """Warm up, then time ``timed``; failures of either are kept, and the count goes on."""
    # One client, so one keep-alive connection, per request in flight: a single client's pool
    # of 32 connections costs several times more CPU per request than 32 clients of one each,
    # enough to make this process the bottleneck.
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    timeout = httpx.Timeout(120.0, connect=10.0)
    url = server.base_url + path
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(http1=True, http2=False, limits=limits, timeout=timeout)
            )
            for _ in range(concurrency)
        ]
        # Built before the clock starts: URL parsing and header merging are client work.
        warm_requests, timed_requests = (
            [clients[0].build_request("POST", url, content=b, headers=headers) for b in bodies]
            for bodies in (warmup, timed)
        )
        warm = Driven()
        if warm_requests:
            log(f"  {name}: warm-up, {len(warm_requests)} requests")
            warm = await drive(clients, warm_requests)
        log(f"  {name}: timing {len(timed_requests)} requests")
        meter = CpuMeter(
            {
                "client": time.process_time,
                "server": server.cpu_seconds,
                "postgres": postgres_cpu_seconds,
            }
        )
        meter.start()
        timed_pass = await drive(clients, timed_requests)
        cpu = meter.stop(timed_pass.seconds)
    errors = dict(warm.errors)
    for kind, count in timed_pass.errors.items():
        errors[kind] = errors.get(kind, 0) + count
    answers = warm.answers + timed_pass.answers
    return Measurement(
        name=name,
        server=server,
        requests=len(timed_pass.answers),
        events=len(timed_pass.answers) * events_per_request,
        seconds=timed_pass.seconds,
        latencies=timed_pass.latencies,
        cpu=cpu,
        failures=[f"warm-up {f}" for f in warm.failures] + timed_pass.failures,
        errors=errors,
        statuses=result_statuses(answers, batch=events_per_request > 1),
        answered_events=len(answers) * events_per_request,
    )
