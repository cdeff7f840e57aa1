"""Processing throughput: a backlog of accepted events, then ONE ``smr worker`` from its start.

With no processor running, ``smr api`` accepts the events (batches of 100, closed loop); the
API is stopped, then one ``smr worker`` (the real command) is started. The bench polls the
database until the log is empty and every expected delivery is written, then sent to the mock
channel, and reads meanwhile the CPU of the worker and of every ``postgres`` process.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from bench.harness.common import BenchError, log
from bench.harness.db import database_of
from bench.harness.load import Measurement, measure
from bench.harness.procfs import DB_BACKENDS, CpuMeter, server_meter
from bench.harness.servers import INGEST_TOKEN, Server, smr_api, smr_worker
from bench.harness.workload import EventFactory
from bench.process_db import Activity, outcome_counts, progress, sample_activity

BATCH_SIZE = 100
POLL_SECONDS = 0.25
#: The CPU of the bench database's backends, part of "postgres" (all of the server's).
HEADERS = {"content-type": "application/json", "authorization": f"Bearer {INGEST_TOKEN}"}


@dataclass
class Marks:
    """Seconds from the worker's start to each milestone, and the CPU used until then."""

    seconds: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, dict[str, float | None]] = field(default_factory=dict)
    #: What the worker's sessions ran or held open, from its start to the end.
    activity: Activity = field(default_factory=Activity)

    def reach(self, name: str, at: float, meter: CpuMeter | None = None) -> None:
        if name not in self.seconds:
            self.seconds[name] = round(at, 3)
            if meter is not None:
                self.cpu[name] = meter.stop(at)


@dataclass
class ThroughputResult:
    events: int
    accept: Measurement
    marks: Marks
    timed_out: bool
    outcome: dict[str, Any]
    worker_problems: list[str]

    def cpu_ms_per_event(self, mark: str) -> dict[str, float]:
        """CPU milliseconds each process spent per event until ``mark``: what the rate would
        cost on any machine, however busy this one was."""
        seconds, cpu = self.marks.seconds.get(mark), self.marks.cpu.get(mark, {})
        if seconds is None or not self.events:
            return {}
        return {
            name: round(share * seconds * 1000 / self.events, 3)
            for name, share in cpu.items()
            if share is not None and name != "other"
        }

    def rate(self, mark: str, *, since: str | None = None) -> float | None:
        end = self.marks.seconds.get(mark)
        start = 0.0 if since is None else self.marks.seconds.get(since)
        if end is None or start is None or end <= start:
            return None
        return round(self.events / (end - start), 1)


async def accept_backlog(
    api: Server, factory: EventFactory, *, events: int, concurrency: int
) -> Measurement:
    """``events`` accepted through ``api`` in batches of 100 (the last one smaller)."""
    bodies = factory.batches(events // BATCH_SIZE, BATCH_SIZE)
    if events % BATCH_SIZE:
        bodies += factory.batches(1, events % BATCH_SIZE)
    return await measure(
        "accept",
        api,
        "/v1/events",
        warmup=[],
        timed=bodies,
        events_per_request=BATCH_SIZE,
        concurrency=concurrency,
        headers=HEADERS,
    )


async def watch(
    worker: Server, dsn: str, *, expected: int, give_up_after: float
) -> tuple[Marks, bool]:
    """Start ``worker``; poll until ``expected`` deliveries are sent or ``give_up_after`` s."""
    conn = await asyncpg.connect(dsn)
    database = database_of(dsn)
    marks = Marks()
    sampler = asyncio.create_task(sample_activity(dsn, marks.activity))
    try:
        began = time.perf_counter()
        worker.start()
        meter = server_meter({"worker": worker.cpu_seconds}, database, this="bench")
        meter.start()
        while (at := time.perf_counter() - began) < give_up_after:
            now = await progress(conn)
            if now.pending < expected:
                marks.reach("first_processed", at)
            if now.pending == 0:
                marks.reach("log_empty", at, meter)
            if now.written >= expected:
                marks.reach("written", at, meter)
            if now.sent >= expected:
                marks.reach("sent", at, meter)
                return marks, False
            if worker.process is not None and worker.process.poll() is not None:
                raise BenchError(f"smr worker exited early:\n{worker.log_tail()}")
            await asyncio.sleep(POLL_SECONDS)
        return marks, True
    finally:
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
        await conn.close()


def measure_throughput(
    *,
    env: dict[str, str],
    dsn: str,
    tmp: Path,
    started: list[Server],
    events: int,
    contacts: int,
    concurrency: int,
    seed: int,
    timeout: float,
) -> ThroughputResult:
    """The phase, on a migrated, empty database; servers started are put in ``started``."""
    api = smr_api(env, tmp)
    started.append(api)
    log(f"throughput: smr api on port {api.port}, accepting {events:,} events")
    api.start()
    api.wait_ready()
    factory = EventFactory(run="process", contacts=contacts, seed=seed)
    accept = asyncio.run(accept_backlog(api, factory, events=events, concurrency=concurrency))
    if accept.failures:
        raise BenchError(f"accepting failed: {accept.errors}; first: {accept.failures[0]}")
    api.stop()
    accepted = asyncio.run(_pending(dsn))
    if accepted != events:
        log(f"warning: {events:,} events posted, {accepted:,} in the log")
    log(f"throughput: {accepted:,} accepted at {accept.events_per_s:,.0f}/s; starting smr worker")
    worker = smr_worker(env, tmp)
    started.append(worker)
    marks, timed_out = asyncio.run(watch(worker, dsn, expected=accepted, give_up_after=timeout))
    worker.stop()
    outcome = asyncio.run(_outcome(dsn))
    return ThroughputResult(accepted, accept, marks, timed_out, outcome, worker.log_problems())


async def _pending(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return (await progress(conn)).pending
    finally:
        await conn.close()


async def _outcome(dsn: str) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        return await outcome_counts(conn)
    finally:
        await conn.close()


def bound_by(cpu: dict[str, float | None], cpus: int) -> str:
    """What limited the rate, judged from the cores each used."""
    worker, postgres = cpu.get("worker") or 0.0, cpu.get("postgres") or 0.0
    busy = sum(v for k, v in cpu.items() if v is not None and k != DB_BACKENDS)
    if worker >= 0.85:
        return f"the worker process (one core for its Python: {worker:.2f} busy)"
    if busy >= 0.9 * cpus:
        return f"the machine (all {cpus} cores busy: {busy:.2f})"
    if postgres >= 0.85 * max(1, cpus - 1):
        return f"postgres ({postgres:.2f} cores)"
    return f"neither saturated (worker {worker:.2f}, postgres {postgres:.2f}): round trips, waits"
