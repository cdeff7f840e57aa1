"""The SMR side of ``bench/wake.py``: the runs, made by SMR itself, and one ``smr worker``
watched while it wakes them; the checks afterwards.

SMR, in this process, accepts ``order.paid`` events and processes them: each starts one run of
``bench-wake`` (``wait: 1d``, then a ``send`` on the mock channel), left ``waiting``. One
``UPDATE`` then makes every one of them due at the same moment, as if the day had passed. The
worker is timed from its start until ``mock_outbox`` holds one row per run.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from bench.harness.common import BenchError, log
from bench.harness.db import database_of, sqlalchemy_url
from bench.harness.procfs import CpuMeter, server_meter
from bench.harness.servers import Server, smr_worker
from bench.harness.workload import EventFactory
from bench.process_db import grouped
from bench.scale_common import bench_settings
from smr.config import IngestSettings
from smr.runtime import build_runtime
from smr.schemas import parse_events
from smr.statuses import DeliveryStatus, RunStatus

PLAYBOOK_ID = "bench-wake"
BATCH_SIZE = 100
POLL_SECONDS = 0.2
#: After the last outbox row, how long the worker may take to mark its last deliveries sent.
SETTLE_SECONDS = 30.0

_PLAYBOOK = f"""\
# Everyone who paid yesterday hears from us at the same moment.
id: {PLAYBOOK_ID}
name: 次日提醒（基准）
mode: parallel
trigger:
  event: order.paid
steps:
  - wait: 1d
  - send:
      channel: mock
      category: service
      text: "{{{{ contact.name or '亲' }}}}，您的订单 {{{{ trigger.data.order_id }}}} 已发货"
"""

# No quiet hours, no frequency caps: nothing holds a send back.
_POLICIES = "timezone: Asia/Shanghai\n"


def write_playbooks(folder: Path) -> None:
    """``policies.yaml`` and the one playbook, ``bench-wake``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "policies.yaml").write_text(_POLICIES, encoding="utf-8")
    (folder / f"{PLAYBOOK_ID}.yaml").write_text(_PLAYBOOK, encoding="utf-8")


@dataclass(frozen=True)
class Seeded:
    """What the set-up made: events accepted and processed, runs waiting, made due."""

    accepted: int
    processed: int
    waiting: int
    made_due: int
    seconds: float


async def start_runs(
    dsn: str, *, runs: int, seed: int, playbooks: Path, data_dir: Path
) -> tuple[int, int]:
    """``runs`` order.paid events, from a pool of as many customers, accepted in batches of 100 and
    processed by SMR in this process; (events accepted, events processed)."""
    settings = bench_settings(
        sqlalchemy_url(dsn),
        data_dir=data_dir,
        playbooks_dir=playbooks,
        ingest=IngestSettings(max_backlog=max(200_000, 2 * runs)),
    )
    runtime = build_runtime(settings)
    factory = EventFactory(run="wake", contacts=runs, seed=seed)
    accepted = 0
    try:
        await runtime.start()  # stores the playbook's version, which the runs refer to
        for start in range(0, runs, BATCH_SIZE):
            events = [factory.event() for _ in range(min(BATCH_SIZE, runs - start))]
            report = await runtime.ingest(parse_events({"events": events}), source="api")
            accepted += report.accepted
        processed = await runtime.process_pending()
    finally:
        await runtime.aclose()
    return accepted, processed


async def make_due(dsn: str) -> tuple[int, int]:
    """Every waiting run due a second ago, then fresh statistics (as autovacuum would leave
    them after so many updates); (runs waiting before, runs made due)."""
    conn = await asyncpg.connect(dsn)
    try:
        waiting = int(
            await conn.fetchval("SELECT count(*) FROM runs WHERE status = $1", RunStatus.WAITING)
        )
        updated = await conn.execute(
            "UPDATE runs SET wake_at = now() - interval '1 second' WHERE status = $1",
            RunStatus.WAITING,
        )
        await conn.execute("VACUUM ANALYZE")  # asyncpg runs it outside a transaction
    finally:
        await conn.close()
    return waiting, int(updated.rpartition(" ")[2])


def prepare(dsn: str, *, runs: int, seed: int, playbooks: Path, data_dir: Path) -> Seeded:
    """The runs, made by SMR and made due; raises BenchError when they are not all there."""
    began = time.perf_counter()
    log(f"SMR (in process): accepting and processing {runs:,} order.paid events")
    accepted, processed = asyncio.run(
        start_runs(dsn, runs=runs, seed=seed, playbooks=playbooks, data_dir=data_dir)
    )
    waiting, made_due = asyncio.run(make_due(dsn))
    seeded = Seeded(accepted, processed, waiting, made_due, round(time.perf_counter() - began, 1))
    if not accepted == processed == waiting == made_due == runs:
        raise BenchError(f"expected {runs} waiting runs made due; got {seeded}")
    log(f"{waiting:,} runs waiting, all made due ({seeded.seconds:.0f} s)")
    return seeded


# --------------------------------------------------------------------------------------------
# One smr worker


@dataclass
class WorkerResult:
    """Seconds from the worker's start: the first and last run woken, the first outbox row
    (its ``sent_at``), the first poll that saw rows, the poll that saw them all (and the last
    ``sent_at``), every delivery marked sent; the cores busy from the start, and from the
    first poll that saw rows."""

    runs: int
    first_woken: float | None = None
    last_woken: float | None = None
    first_row: float | None = None
    first_seen: float | None = None
    seen_before: int = 0
    all_rows: float | None = None
    last_sent_at: float | None = None
    settled: float | None = None
    timed_out: bool = False
    cpu: dict[str, float | None] = field(default_factory=dict)
    cpu_sending: dict[str, float | None] = field(default_factory=dict)
    logged: list[str] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)

    def rate(self, since: float | None, until: float | None) -> float | None:
        if since is None or until is None or until <= since:
            return None
        return round(self.runs / (until - since), 1)

    @property
    def from_start(self) -> float | None:
        return self.rate(0.0, self.all_rows)

    @property
    def from_first_row(self) -> float | None:
        return self.rate(self.first_row, self.all_rows)

    def cpu_ms_per_run(self, *, sending: bool = False) -> dict[str, float]:
        """CPU milliseconds each process spent per run, from the worker's start (its start-up
        included) or from the first outbox row seen (``sending``; at most
        ``seen_before`` fewer runs): what a run costs, however busy the machine was."""
        if self.all_rows is None or self.first_seen is None:
            return {}
        cpu, since, runs = self.cpu, 0.0, self.runs
        if sending:
            cpu, since, runs = self.cpu_sending, self.first_seen, self.runs - self.seen_before
        return {
            name: round(share * (self.all_rows - since) * 1000 / max(1, runs), 3)
            for name, share in cpu.items()
            if share is not None and name != "other"
        }


def cpu_meter(worker: Server, database: str) -> CpuMeter:
    """Cores busy in the worker, every ``postgres`` process (and within them the bench
    database's backends), the bench, and the rest of the machine."""
    meter = server_meter({"worker": worker.cpu_seconds}, database, this="bench")
    meter.start()
    return meter


async def watch(worker: Server, dsn: str, *, runs: int, give_up_after: float) -> WorkerResult:
    """Start ``worker``; poll ``mock_outbox`` until it holds ``runs`` rows."""
    result = WorkerResult(runs)
    conn = await asyncpg.connect(dsn)
    try:
        started_at, began = datetime.now(UTC), time.perf_counter()
        worker.start()
        meter, sending = cpu_meter(worker, database_of(dsn)), None
        while (at := time.perf_counter() - began) < give_up_after:
            rows = int(await conn.fetchval("SELECT count(*) FROM mock_outbox"))
            if rows and sending is None:
                result.first_seen, result.seen_before = round(at, 3), rows
                sending = cpu_meter(worker, database_of(dsn))
            if rows >= runs and sending is not None:
                result.all_rows, result.cpu = round(at, 3), meter.stop(at)
                result.cpu_sending = sending.stop()
                break
            if worker.process is not None and worker.process.poll() is not None:
                raise BenchError(f"smr worker exited early:\n{worker.log_tail()}")
            await asyncio.sleep(POLL_SECONDS)
        else:
            result.timed_out = True
            return result
        result.settled = await settle(conn, runs=runs, began=began)
        marks = await timeline(conn, started_at)
        result.first_woken, result.last_woken = marks["first_woken"], marks["last_woken"]
        result.first_row, result.last_sent_at = marks["first_row"], marks["last_sent_at"]
        return result
    finally:
        await conn.close()


def measure_worker(
    env: dict[str, str], *, dsn: str, tmp: Path, runs: int, timeout: float
) -> WorkerResult:
    """One ``smr worker`` (``env``) started, watched until ``runs`` outbox rows, stopped; then
    what the database holds."""
    worker = smr_worker(env, tmp)
    log(f"SMR: one smr worker, {runs:,} runs due")
    try:
        result = asyncio.run(watch(worker, dsn, runs=runs, give_up_after=timeout))
    finally:
        worker.stop()
    result.logged = worker.log_problems()
    result.counts = asyncio.run(outcome(dsn))
    return result


def worker_failures(result: WorkerResult) -> list[str]:
    """What went wrong: not done in time, or the database not as it should be."""
    found = failures(result.counts, result.runs)
    if result.timed_out:
        found.insert(0, "the worker did not write every outbox row within the timeout")
    elif result.settled is None:
        found.append(f"deliveries not all marked sent {SETTLE_SECONDS:.0f} s after the last row")
    return found


# --------------------------------------------------------------------------------------------
# What the database holds


async def settle(conn: asyncpg.Connection, *, runs: int, began: float) -> float | None:
    """Wait until every delivery is marked sent (the worker's bookkeeping after the send);
    seconds since ``began`` (``perf_counter``), None if not within ``SETTLE_SECONDS``."""
    deadline = time.perf_counter() + SETTLE_SECONDS
    while time.perf_counter() < deadline:
        sent = await conn.fetchval(
            "SELECT count(*) FROM deliveries WHERE status = $1", DeliveryStatus.SENT
        )
        if int(sent) >= runs:
            return round(time.perf_counter() - began, 3)
        await asyncio.sleep(POLL_SECONDS)
    return None


async def timeline(conn: asyncpg.Connection, since: datetime) -> dict[str, float | None]:
    """Seconds from ``since`` (the worker's start, by the machine's clock, which the worker's
    clock is too) to the first and last run woken (their ``wake`` trace entries, written
    with the waker's batch) and to the first and last outbox row (``sent_at``)."""
    row = await conn.fetchrow(
        """
        SELECT (SELECT min(at) FROM trace_entries WHERE kind = 'wake') AS first_woken,
               (SELECT max(at) FROM trace_entries WHERE kind = 'wake') AS last_woken,
               (SELECT min(sent_at) FROM mock_outbox) AS first_row,
               (SELECT max(sent_at) FROM mock_outbox) AS last_sent_at
        """
    )
    return {
        key: None if at is None else round((at - since).total_seconds(), 3)
        for key, at in row.items()
    }


async def outcome(dsn: str) -> dict[str, Any]:
    """Runs, deliveries and outbox rows after the worker, counted in SQL."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetchrow(
            """
            SELECT (SELECT count(*) FROM mock_outbox) AS outbox,
                   (SELECT count(*) FROM deliveries d
                     WHERE NOT EXISTS (SELECT 1 FROM mock_outbox o WHERE o.delivery_id = d.id)
                   ) AS without_outbox_row,
                   (SELECT count(DISTINCT run_id) FROM deliveries) AS runs_with_delivery
            """
        )
        return {
            "runs_by_status": await grouped(conn, "SELECT status, count(*) FROM runs GROUP BY 1"),
            "deliveries_by_status": await grouped(
                conn, "SELECT status, count(*) FROM deliveries GROUP BY 1"
            ),
            "mock_outbox": int(rows["outbox"]),
            "deliveries_without_outbox_row": int(rows["without_outbox_row"]),
            "runs_with_a_delivery": int(rows["runs_with_delivery"]),
        }
    finally:
        await conn.close()


def failures(counts: dict[str, Any], runs: int) -> list[str]:
    """What is wrong with ``counts`` (from ``outcome``) after ``runs`` runs were woken."""
    found = []
    if counts["mock_outbox"] != runs:
        found.append(f"mock_outbox holds {counts['mock_outbox']} rows, expected {runs}")
    if counts["runs_by_status"] != {RunStatus.COMPLETED: runs}:
        found.append(f"runs by status {counts['runs_by_status']}, expected {runs} completed")
    if counts["deliveries_by_status"] != {DeliveryStatus.SENT: runs}:
        found.append(f"deliveries by status {counts['deliveries_by_status']}, expected {runs} sent")
    if counts["deliveries_without_outbox_row"]:
        found.append(f"{counts['deliveries_without_outbox_row']} deliveries have no outbox row")
    if counts["runs_with_a_delivery"] != runs:
        found.append(f"{counts['runs_with_a_delivery']} runs have a delivery, expected {runs}")
    return found
