"""Dispatch throughput of SMR against APScheduler 3 with a PostgreSQL job store.

One run:

1. creates a fresh database (``smr_bench_dispatch``) and migrates it with ``smr.migrations``;
2. seeds N contacts (each with a phone identity), N completed runs and N deliveries due now
   (channel ``mock``, category ``service``, a text), plus a few warm-up batches due a minute
   earlier, with binary COPY (not timed);
3. SMR: builds the runtime on that database (mock latency 0, empty playbooks folder) and, after
   the warm-up batches, calls ``Dispatcher.tick`` in one process and one worker until all N
   deliveries are handled: claim (``FOR UPDATE SKIP LOCKED`` + lease), the policy gate, the mock
   send with its outbox ``INSERT``, and the bookkeeping (deliveries, attempts, trace);
4. baseline: APScheduler 3 (``AsyncIOScheduler``, ``SQLAlchemyJobStore`` on the same PostgreSQL
   through psycopg 3, ``AsyncIOExecutor``), one ``date`` job per message, each job one asyncpg
   ``INSERT`` of an outbox row (what the mock channel writes per send); timed from the first
   ``add_job`` to the last job finished;
5. checks that every delivery was sent once (``mock_outbox`` rows, statuses, attempts) and every
   job ran once, prints the table and the verdicts, writes ``bench/results/dispatch.json``
   (git-ignored) and prints the same JSON as the last line of stdout;
6. drops the database, whatever happened (``--keep-db`` keeps it).

Targets: SMR at least 5,000 deliveries/s and at least 10x the baseline's messages/s. Missing a
target does not change the exit code; it is 1 only when a correctness check fails.

    .venv/bin/python bench/dispatch.py [--deliveries 20000] [--batch-size 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bench.harness.common import (
    BenchError,
    busy_notes,
    guarded_main,
    log,
    package_versions,
    verdict,
    write_results,
)
from bench.harness.db import create_database, database_dsn, drop_database, sqlalchemy_url
from bench.scale_common import bench_settings, process_meter
from smr.config import Settings
from smr.db import create_engine, session_factory, unit_of_work
from smr.ids import new_id
from smr.migrations import upgrade
from smr.models import Contact, ContactIdentity, Delivery, Run, table_of
from smr.repositories._bulk import insert_many
from smr.runtime import build_runtime

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_FILE = BENCH_DIR / "results" / "dispatch.json"
TARGET_DELIVERIES_PER_S = 5_000.0
TARGET_RATIO = 10.0
SEED_CHUNK = 5_000
PLAYBOOK_ID = "bench-dispatch"
PLAYBOOK_VERSION = "bench00000000000"
STEP = "steps[0]"
BASELINE_POOL = (10, 20)  # asyncpg pool bounds; SMR's engine keeps up to 20 connections
BASELINE_TIMEOUT_S = 600.0

# --------------------------------------------------------------------------------------------
# Options


@dataclass(frozen=True)
class Options:
    deliveries: int
    batch_size: int
    warmup_batches: int
    lanes: int
    baseline: int
    baseline_cap: int
    baseline_mode: str
    pg: str
    database: str
    keep_db: bool


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        description="SMR dispatch throughput against APScheduler 3 (SQLAlchemyJobStore).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--deliveries", type=int, default=20_000, help="deliveries SMR sends, timed"
    )
    defaults = Settings.model_fields
    parser.add_argument(
        "--batch-size",
        type=int,
        default=defaults["batch_size"].default,
        help="SMR's batch_size (deliveries per claim)",
    )
    parser.add_argument(
        "--lanes",
        type=int,
        default=defaults["dispatch_lanes"].default,
        help="SMR's dispatch_lanes (concurrent claim loops)",
    )
    parser.add_argument(
        "--warmup-batches",
        type=int,
        default=2,
        help="batches SMR sends before timing (pool connections, prepared statements)",
    )
    parser.add_argument(
        "--baseline",
        type=int,
        default=5_000,
        help="APScheduler jobs (messages) timed; at most --deliveries",
    )
    parser.add_argument(
        "--baseline-mode",
        choices=("paused", "running"),
        default="paused",
        help="paused: add every job to a paused scheduler, then resume it (one pass over the "
        "due jobs); running: add them to a running scheduler (each add_job also wakes it up)",
    )
    parser.add_argument(
        "--pg",
        default=os.environ.get("SMR_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="maintenance DSN used to create and drop the bench database (env SMR_BENCH_PG)",
    )
    parser.add_argument(
        "--database", default="smr_bench_dispatch", help="bench database, recreated"
    )
    parser.add_argument("--keep-db", action="store_true", help="keep the database afterwards")
    ns = parser.parse_args(argv)
    if ns.deliveries < 1:
        parser.error("--deliveries must be at least 1")
    if not 1 <= ns.batch_size <= 5000:
        parser.error("--batch-size must be between 1 and 5000 (Settings.batch_size)")
    if ns.warmup_batches < 0:
        parser.error("--warmup-batches must not be negative")
    if ns.baseline < 1:
        parser.error("--baseline must be at least 1")
    if not ns.database.replace("_", "").isalnum():
        parser.error("--database must be letters, digits and underscores")
    return Options(
        deliveries=ns.deliveries,
        batch_size=ns.batch_size,
        warmup_batches=ns.warmup_batches,
        lanes=ns.lanes,
        baseline=min(ns.baseline, ns.deliveries),
        baseline_cap=ns.baseline,
        baseline_mode=ns.baseline_mode,
        pg=ns.pg,
        database=ns.database,
        keep_db=ns.keep_db,
    )


# --------------------------------------------------------------------------------------------
# Database and seed


def seed_rows(
    count: int, *, due_at: datetime, now: datetime, serial: int = 0
) -> dict[str, list[dict[str, Any]]]:
    """``count`` contacts with a phone each, a completed run each and one due delivery each."""
    rows: dict[str, list[dict[str, Any]]] = {
        "contacts": [],
        "identities": [],
        "runs": [],
        "deliveries": [],
    }
    for n in range(serial, serial + count):
        contact_id, run_id = new_id("ct", now), new_id("run", now)
        name = f"客户{n:06d}"
        rows["contacts"].append(
            {
                "id": contact_id,
                "name": name,
                "tags": ["已购"],
                "attributes": {},
                "opted_out": [],
                "orders": 1,
                "total_spent": Decimal("299.00"),
                "first_order_at": now,
                "last_order_at": now,
                "created_at": now,
                "updated_at": now,
            }
        )
        rows["identities"].append(
            {"kind": "phone", "value": f"138{n:08d}", "contact_id": contact_id}
        )
        rows["runs"].append(
            {
                "id": run_id,
                "contact_id": contact_id,
                "playbook_id": PLAYBOOK_ID,
                "playbook_version": PLAYBOOK_VERSION,
                "status": "completed",
                "pc": 0,
                "started_at": now,
                "ended_at": now,
                "updated_at": now,
            }
        )
        rows["deliveries"].append(
            {
                "id": new_id("dl", now),
                "run_id": run_id,
                "contact_id": contact_id,
                "playbook_id": PLAYBOOK_ID,
                "step": STEP,
                "channel": "mock",
                "category": "service",
                "text": f"{name}，感谢下单！订单 SO{n:09d} 已付款，我们会尽快发货。",
                "params": {},
                "status": "scheduled",
                "due_at": due_at,
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
            }
        )
    return rows


async def seed(url: str, *, deliveries: int, warmup: int) -> None:
    """Warm-up deliveries due a minute ago, then the timed ones due now, through SMR's COPY."""
    engine = create_engine(url)
    sessions = session_factory(engine)
    now = datetime.now(UTC)
    tables = {
        "contacts": table_of(Contact),
        "identities": table_of(ContactIdentity),
        "runs": table_of(Run),
        "deliveries": table_of(Delivery),
    }
    plan = [(warmup, now - timedelta(minutes=1), 0), (deliveries, now, warmup)]
    try:
        for count, due_at, serial in plan:
            for start in range(0, count, SEED_CHUNK):
                size = min(SEED_CHUNK, count - start)
                rows = seed_rows(size, due_at=due_at, now=now, serial=serial + start)
                async with unit_of_work(sessions) as session:
                    for key, table in tables.items():
                        await insert_many(session, table, rows[key])
    finally:
        await engine.dispose()


async def prepare_baseline_table(dsn: str) -> None:
    """The baseline's outbox (same columns and keys as ``mock_outbox``), and fresh statistics."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE baseline_outbox (LIKE mock_outbox INCLUDING ALL)")
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


# --------------------------------------------------------------------------------------------
# CPU accounting


# --------------------------------------------------------------------------------------------
# SMR


@dataclass
class SmrResult:
    deliveries: int
    batch_size: int
    warmup_deliveries: int
    ticks: int
    handled: int
    seconds: float
    deliveries_per_s: float
    cpu: dict[str, float | None]
    counts: dict[str, Any] = field(default_factory=dict)


async def measure_smr(url: str, options: Options, playbooks: Path, data_dir: Path) -> SmrResult:
    settings = bench_settings(
        url,
        data_dir=data_dir,
        playbooks_dir=playbooks,
        batch_size=options.batch_size,
        dispatch_lanes=options.lanes,
    )
    runtime = build_runtime(settings)
    warmup = options.warmup_batches * options.batch_size * options.lanes
    try:
        await runtime.start()
        if options.warmup_batches:
            warmed = await runtime.dispatcher.tick(max_batches=options.warmup_batches)
            if warmed != warmup:
                raise BenchError(f"warm-up handled {warmed} deliveries, expected {warmup}")
        meter = process_meter(os.getpid(), "bench_process")
        meter.start()
        started = time.perf_counter()
        handled = ticks = 0
        while handled < options.deliveries:
            got = await runtime.dispatcher.tick(max_batches=10**6)
            ticks += 1
            if not got:
                break
            handled += got
        seconds = time.perf_counter() - started
        cpu = meter.stop(seconds)
    finally:
        await runtime.aclose()
    return SmrResult(
        deliveries=options.deliveries,
        batch_size=options.batch_size,
        warmup_deliveries=warmup,
        ticks=ticks,
        handled=handled,
        seconds=round(seconds, 3),
        deliveries_per_s=round(handled / seconds, 1) if seconds > 0 else 0.0,
        cpu=cpu,
    )


async def smr_counts(dsn: str) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        statuses = {
            str(r["status"]): int(r["n"])
            for r in await conn.fetch("SELECT status, count(*) AS n FROM deliveries GROUP BY 1")
        }
        attempts = {
            int(r["attempts"]): int(r["n"])
            for r in await conn.fetch("SELECT attempts, count(*) AS n FROM deliveries GROUP BY 1")
        }
        outbox = int(await conn.fetchval("SELECT count(*) FROM mock_outbox"))
        unmatched = int(
            await conn.fetchval(
                "SELECT count(*) FROM deliveries d LEFT JOIN mock_outbox o"
                " ON o.delivery_id = d.id WHERE o.delivery_id IS NULL"
            )
        )
        attempt_rows = {
            str(r["outcome"]): int(r["n"])
            for r in await conn.fetch(
                "SELECT outcome, count(*) AS n FROM delivery_attempts GROUP BY 1"
            )
        }
        traces = int(await conn.fetchval("SELECT count(*) FROM trace_entries"))
    finally:
        await conn.close()
    return {
        "deliveries_by_status": statuses,
        "deliveries_by_attempts": attempts,
        "mock_outbox": outbox,
        "deliveries_without_outbox_row": unmatched,
        "delivery_attempts_by_outcome": attempt_rows,
        "trace_entries": traces,
    }


def smr_failures(result: SmrResult) -> list[str]:
    total = result.deliveries + result.warmup_deliveries
    counts = result.counts
    failures = []
    if result.handled != result.deliveries:
        failures.append(
            f"SMR handled {result.handled} deliveries in the timed part, expected "
            f"{result.deliveries}"
        )
    if counts["deliveries_by_status"] != {"sent": total}:
        failures.append(
            f"deliveries by status {counts['deliveries_by_status']}, expected all {total} sent"
        )
    if counts["mock_outbox"] != total:
        failures.append(f"mock_outbox holds {counts['mock_outbox']} rows, expected {total}")
    if counts["deliveries_without_outbox_row"]:
        failures.append(f"{counts['deliveries_without_outbox_row']} deliveries have no outbox row")
    if counts["deliveries_by_attempts"] != {1: total}:
        failures.append(
            f"deliveries by attempts {counts['deliveries_by_attempts']}, expected 1 each"
        )
    if counts["delivery_attempts_by_outcome"] != {"sent": total}:
        failures.append(
            f"attempt rows {counts['delivery_attempts_by_outcome']}, expected {total} sent"
        )
    return failures


# --------------------------------------------------------------------------------------------
# Baseline: APScheduler 3


INSERT_OUTBOX = (
    "INSERT INTO baseline_outbox (delivery_id, channel, contact_id, recipient, text, params,"
    " sent_at) VALUES ($1, $2, $3, $4::jsonb, $5, $6::jsonb, $7)"
    " ON CONFLICT (delivery_id) DO NOTHING RETURNING delivery_id"
)


@dataclass
class BaselineState:
    """What the job function reaches: the job arguments stay a pickled message index."""

    pool: Any
    messages: list[tuple[str, str, str, str, str, str]]
    ran: list[int]
    expected: int
    finished: asyncio.Event
    done: int = 0
    last_finished: float = 0.0
    errors: list[str] = field(default_factory=list)


_STATE: BaselineState | None = None


async def send_job(index: int) -> None:
    """One APScheduler job: what the mock channel does for one send (one outbox INSERT)."""
    state = _STATE
    assert state is not None
    delivery_id, channel, contact_id, recipient, text, params = state.messages[index]
    async with state.pool.acquire() as conn:
        await conn.fetchval(
            INSERT_OUTBOX,
            delivery_id,
            channel,
            contact_id,
            recipient,
            text,
            params,
            datetime.now(UTC),
        )
    state.ran[index] += 1
    state.done += 1
    state.last_finished = time.perf_counter()
    if state.done >= state.expected:
        state.finished.set()


@dataclass
class BaselineResult:
    messages: int
    mode: str
    add_seconds: float
    scheduled_per_s: float
    seconds: float
    messages_per_s: float
    cpu: dict[str, float | None]
    counts: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def baseline_messages(count: int) -> list[tuple[str, str, str, str, str, str]]:
    now = datetime.now(UTC)
    messages = []
    for n in range(count):
        recipient = json.dumps({"phone": f"139{n:08d}"})
        text = f"客户{n:06d}，感谢下单！订单 SO{n:09d} 已付款，我们会尽快发货。"
        messages.append((new_id("dl", now), "mock", new_id("ct", now), recipient, text, "{}"))
    return messages


async def measure_baseline(dsn: str, options: Options) -> BaselineResult:
    global _STATE
    count = options.baseline
    _, _, rest = dsn.partition("://")
    jobstore = SQLAlchemyJobStore(url=f"postgresql+psycopg://{rest}")
    scheduler = AsyncIOScheduler(
        jobstores={"default": jobstore},
        executors={"default": AsyncIOExecutor()},
        timezone=UTC,
    )
    problems: list[str] = []

    def listener(event: Any) -> None:
        what = {EVENT_JOB_MISSED: "missed", EVENT_JOB_ERROR: "error"}.get(event.code, "max inst")
        problems.append(f"job {event.job_id}: {what} {getattr(event, 'exception', '') or ''}")

    scheduler.add_listener(listener, EVENT_JOB_MISSED | EVENT_JOB_ERROR | EVENT_JOB_MAX_INSTANCES)
    pool = await asyncpg.create_pool(dsn, min_size=BASELINE_POOL[0], max_size=BASELINE_POOL[1])
    state = BaselineState(
        pool=pool,
        messages=baseline_messages(count),
        ran=[0] * count,
        expected=count,
        finished=asyncio.Event(),
    )
    _STATE = state
    try:
        scheduler.start(paused=options.baseline_mode == "paused")
        meter = process_meter(os.getpid(), "bench_process")
        meter.start()
        started = time.perf_counter()
        for index in range(count):
            scheduler.add_job(
                send_job,
                "date",
                run_date=datetime.now(UTC),
                args=(index,),
                id=f"msg-{index}",
                misfire_grace_time=None,  # run however late: none may be dropped
                coalesce=False,
            )
        added = time.perf_counter() - started
        if options.baseline_mode == "paused":
            scheduler.resume()
        try:
            await asyncio.wait_for(state.finished.wait(), BASELINE_TIMEOUT_S)
        except TimeoutError:
            problems.append(f"only {state.done} of {count} jobs ran within {BASELINE_TIMEOUT_S}s")
        seconds = (state.last_finished or time.perf_counter()) - started
        cpu = meter.stop(seconds)
        await asyncio.sleep(0.2)  # a job running twice would show up now
        left = len(scheduler.get_jobs())
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down from a loop callback
        await pool.close()
        _STATE = None
    rows = await _count(dsn, "baseline_outbox")
    counts = {
        "jobs_run_once": sum(1 for r in state.ran if r == 1),
        "jobs_never_run": sum(1 for r in state.ran if r == 0),
        "jobs_run_more_than_once": sum(1 for r in state.ran if r > 1),
        "baseline_outbox": rows,
        "jobs_left_in_store": left,
    }
    failures = list(problems[:10])
    if counts["jobs_run_once"] != count:
        failures.append(f"jobs run once {counts['jobs_run_once']}, expected {count}: {counts}")
    if rows != count:
        failures.append(f"baseline_outbox holds {rows} rows, expected {count}")
    if left:
        failures.append(f"{left} jobs left in the APScheduler job store")
    return BaselineResult(
        messages=count,
        mode=options.baseline_mode,
        add_seconds=round(added, 3),
        scheduled_per_s=round(count / added, 1) if added > 0 else 0.0,
        seconds=round(seconds, 3),
        messages_per_s=round(state.done / seconds, 1) if seconds > 0 else 0.0,
        cpu=cpu,
        counts=counts,
        failures=failures,
    )


async def _count(dsn: str, table: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))  # noqa: S608
    finally:
        await conn.close()


# --------------------------------------------------------------------------------------------
# Report


def fmt_cpu(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def print_report(smr: SmrResult, base: BaselineResult, summary: dict[str, Any]) -> None:
    setup = summary["setup"]
    print()
    print(
        f"SMR dispatch benchmark. One process, one worker, asyncio loop; PostgreSQL "
        f"{setup['postgres_version']}, {setup['cpus']} CPUs. SMR: batch_size {smr.batch_size}, "
        f"mock latency 0, {smr.warmup_deliveries} warm-up deliveries before timing. Baseline: "
        f"APScheduler {setup['apscheduler']} AsyncIOScheduler + SQLAlchemyJobStore (psycopg "
        f"{setup['psycopg']}), AsyncIOExecutor, {base.messages} date jobs "
        f"(min(N, {setup['baseline_cap']})), added to a {base.mode} scheduler."
    )
    header = (
        f"{'measurement':<40}{'messages':>9}{'seconds':>9}{'msgs/s':>10}"
        f"{'cpu:bench':>11}{'postgres':>9}{'other':>7}"
    )
    print(header)
    print("-" * len(header))
    lines = (
        ("SMR Dispatcher.tick (claim+send+record)", smr.handled, smr.seconds,
         smr.deliveries_per_s, smr.cpu),
        ("APScheduler add_job only", base.messages, base.add_seconds, base.scheduled_per_s, None),
        ("APScheduler add_job -> last job done", base.messages, base.seconds,
         base.messages_per_s, base.cpu),
    )  # fmt: skip
    for label, messages, seconds, rate, cpu in lines:
        shown = cpu or {}
        print(
            f"{label:<40}{messages:>9}{seconds:>9.2f}{rate:>10,.0f}"
            f"{fmt_cpu(shown.get('bench_process')) if cpu else '':>11}"
            f"{fmt_cpu(shown.get('postgres')) if cpu else '':>9}"
            f"{fmt_cpu(shown.get('other')) if cpu else '':>7}"
        )
    print("-" * len(header))
    print("cpu: cores busy during the timed part (1.00 = one core); other = rest of machine")
    print(
        f"SMR: {smr.deliveries_per_s:,.0f} deliveries/s  (target >= "
        f"{TARGET_DELIVERIES_PER_S:,.0f})  {verdict(summary['rate_pass'])}"
    )
    print(
        f"SMR / APScheduler: {summary['ratio']:.1f}x  (target >= {TARGET_RATIO:.0f}x)  "
        f"{verdict(summary['ratio_pass'])}"
    )
    for note in summary["notes"]:
        print(f"note: {note}")


# --------------------------------------------------------------------------------------------
# Main


def run(options: Options) -> int:
    dsn = database_dsn(options.pg, options.database)
    url = sqlalchemy_url(dsn)
    warmup = options.warmup_batches * options.batch_size * options.lanes
    try:
        with tempfile.TemporaryDirectory(prefix="smr-bench-dispatch-") as tmp:
            log(f"creating database {options.database}")
            postgres_version = asyncio.run(create_database(options.pg, options.database))
            upgrade(url)
            log(f"seeding {options.deliveries} deliveries (+{warmup} warm-up)")
            asyncio.run(seed(url, deliveries=options.deliveries, warmup=warmup))
            asyncio.run(prepare_baseline_table(dsn))
            playbooks = Path(tmp) / "playbooks"
            playbooks.mkdir()
            log("SMR: dispatching")
            smr = asyncio.run(measure_smr(url, options, playbooks, Path(tmp) / "data"))
            smr.counts = asyncio.run(smr_counts(dsn))
            log(f"APScheduler: {options.baseline} jobs")
            base = asyncio.run(measure_baseline(dsn, options))
    finally:
        if not options.keep_db:
            asyncio.run(drop_database(options.pg, options.database))
    failures = smr_failures(smr) + base.failures
    ratio = smr.deliveries_per_s / base.messages_per_s if base.messages_per_s else 0.0
    summary: dict[str, Any] = {
        "setup": {
            "postgres_version": postgres_version,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            **package_versions("sqlalchemy", "asyncpg", "apscheduler", "psycopg"),
            "loop": "asyncio",
            "baseline_cap": options.baseline_cap,
            "database": options.database,
        },
        "smr": asdict(smr),
        "baseline": asdict(base),
        "ratio": round(ratio, 2),
        "targets": {"deliveries_per_s": TARGET_DELIVERIES_PER_S, "ratio": TARGET_RATIO},
        "rate_pass": smr.deliveries_per_s >= TARGET_DELIVERIES_PER_S,
        "ratio_pass": ratio >= TARGET_RATIO,
        "checks_failed": failures,
        "notes": busy_notes([("SMR", smr.cpu), ("APScheduler", base.cpu)]),
        "ok": not failures,
    }
    print_report(smr, base, summary)
    write_results(RESULTS_FILE, summary)
    for text in failures:
        log(f"check failed: {text}")
    print(json.dumps(summary, ensure_ascii=False, separators=(",", ":")), flush=True)
    return 1 if failures else 0


def main(argv: Sequence[str] | None = None) -> int:
    return guarded_main(run, parse_args(argv), interrupted="database dropped")


if __name__ == "__main__":
    sys.exit(main())
