"""How fast SMR accepts events on PostgreSQL, next to the least an ingest endpoint can do.

Accepting is validating, deduplicating by (source, key) and appending the event to the durable
log; processing happens later, elsewhere (``bench/process.py`` measures it). One run:

1. creates a fresh database (``smr_bench``) and a temporary playbooks folder with 20 playbooks
   (``bench.harness.workload``);
2. starts SMR (the app ``smr api`` serves: the API, no processor, no dispatcher) and the bare
   endpoint (``bench/bare_app.py``) as uvicorn subprocesses with the same flags, on free
   loopback ports;
3. drives them from this process with httpx (HTTP/1.1, keep-alive, fixed concurrency), each
   measurement a fixed number of requests after a warm-up: bare single events, SMR single
   events, bare batches of 100 (one INSERT for the 100), SMR batches of 100;
4. prints the rates, compares them with the targets (SMR single >= 80 % of bare single; SMR
   batch >= 10,000 events/s and >= 50 % of bare batch), checks what was stored (one ``events``
   row per accepted event, pending or processed), writes ``bench/results/ingest.json`` and
   prints it as JSON on the last line of stdout;
5. stops the servers and drops the database, whatever happened.

The exit code is 0 whether or not the targets are met; 1 when a server fails to start or any
request fails (no answer, or an answer other than 202).

    .venv/bin/python bench/ingest.py [--single 3000] [--batches 200] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx

from bench.harness.common import (
    RESULTS_DIR,
    guarded_main,
    log,
    print_json_line,
    write_results,
)
from bench.harness.db import (
    add_database_options,
    check_database_name,
    count_rows,
    database_dsn,
    dropped_afterwards,
    recreate_database,
)
from bench.harness.load import Measurement, measure
from bench.harness.servers import (
    INGEST_TOKEN,
    Server,
    app_command,
    free_port,
    migrate,
    server_env,
    shown,
    smr_command,
    smr_env,
    uvicorn_choices,
)
from bench.harness.workload import PLAYBOOK_COUNT, EventFactory, write_playbooks
from bench.ingest_report import (
    BATCH_SIZE,
    TARGET_BATCH_EVENTS_PER_S,
    TARGET_BATCH_RATIO,
    TARGET_SINGLE_RATIO,
    consistency_notes,
    print_report,
    summarise,
)

RESULTS_FILE = RESULTS_DIR / "ingest.json"


@dataclass(frozen=True)
class Options:
    single: int
    batches: int
    concurrency: int
    warmup: int
    batch_warmup: int
    contacts: int
    max_backlog: int | None
    pg: str
    database: str
    smr_cli: bool
    keep_db: bool
    seed: int


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        description="SMR's accept rate against a bare FastAPI + asyncpg endpoint.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--single", type=int, default=3000, help="single-event requests timed")
    parser.add_argument("--batches", type=int, default=200, help="batch requests timed")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--warmup", type=int, default=200, help="single requests before timing")
    parser.add_argument("--batch-warmup", type=int, default=10, help="batch requests before timing")
    parser.add_argument(
        "--contacts", type=int, default=5000, help="distinct customers (phones) events come from"
    )
    parser.add_argument(
        "--max-backlog",
        type=int,
        default=None,
        help="SMR_INGEST__MAX_BACKLOG for SMR (default: SMR's own); nothing processes the "
        "events here, so the backlog grows by every event accepted",
    )
    add_database_options(parser, database="smr_bench")
    parser.add_argument(
        "--smr-cli",
        action="store_true",
        help="run SMR through the real `smr api` command (its uvicorn keeps the access log on, "
        "so the servers are no longer configured alike)",
    )
    parser.add_argument("--seed", type=int, default=20261123, help="seed of the generated data")
    ns = parser.parse_args(argv)
    for name in ("single", "batches", "concurrency", "contacts"):
        if getattr(ns, name) < 1:
            parser.error(f"--{name} must be at least 1")
    for name in ("warmup", "batch_warmup"):
        if getattr(ns, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must not be negative")
    if ns.contacts > 10_000_000:
        parser.error("--contacts must be at most 10000000")
    check_database_name(parser, ns.database)
    return Options(
        single=ns.single,
        batches=ns.batches,
        concurrency=ns.concurrency,
        warmup=ns.warmup,
        batch_warmup=ns.batch_warmup,
        contacts=ns.contacts,
        max_backlog=ns.max_backlog,
        pg=ns.pg,
        database=ns.database,
        smr_cli=ns.smr_cli,
        keep_db=ns.keep_db,
        seed=ns.seed,
    )


# --------------------------------------------------------------------------------------------
# Servers


@dataclass
class Servers:
    bare: Server
    smr: Server
    description: dict[str, Any]


def prepare_servers(
    tmp: Path, db_dsn: str, *, smr_cli: bool = False, smr_extra: dict[str, str] | None = None
) -> Servers:
    """Playbooks, environment and commands of both servers (not started yet); ``smr_cli``: SMR
    through the real `smr api` command (see ``--smr-cli``); ``smr_extra``: more ``SMR_*``."""
    loop_impl, http_impl = uvicorn_choices()
    playbooks = tmp / "playbooks"
    write_playbooks(playbooks)
    env = smr_env(db_dsn, playbooks, tmp / "data", **(smr_extra or {}))
    smr_port, bare_port = free_port(), free_port()
    if smr_cli:
        smr_cmd = [smr_command(), "api", "--host", "127.0.0.1", "--port", str(smr_port)]
        how = "`smr api` (API only, no processor, no dispatcher; its uvicorn defaults, access log)"
    else:
        migrate(env)
        smr_cmd = app_command("smr_app:create", smr_port, factory=True)
        how = "the `smr api` app (API only, no processor, no dispatcher) under the bare flags"
    bare_cmd = app_command("bare_app:app", bare_port)
    bare_env = server_env({"BENCH_DSN": db_dsn, "BENCH_POOL_MIN": "10", "BENCH_POOL_MAX": "20"})
    return Servers(
        bare=Server("bare endpoint", bare_cmd, bare_env, bare_port, tmp / "bare.log", "/readyz"),
        smr=Server("SMR", smr_cmd, env, smr_port, tmp / "smr.log", "/readyz"),
        description={
            "smr_server": how,
            "smr_command": shown(smr_cmd),
            "bare_command": shown(bare_cmd),
            "loop": loop_impl,
            "http": http_impl,
            "workers": 1,
            "access_log": {"bare": "off", "smr": "on" if smr_cli else "off"},
            "db_pool": {
                "bare": "asyncpg 10..20",
                "smr": "accept: asyncpg, SMR_INGEST__POOL_SIZE (20); SQLAlchemy pool_size 20",
            },
            "smr_settings": smr_extra or {},
        },
    )


# --------------------------------------------------------------------------------------------
# Driving


@dataclass(frozen=True)
class Step:
    key: str
    label: str
    on_smr: bool
    path: str
    warmup: int
    timed: int
    per_request: int


def steps(options: Options) -> list[Step]:
    single, batch = (options.warmup, options.single), (options.batch_warmup, options.batches)
    return [
        Step("bare_single", "bare single  POST /events", False, "/events", *single, 1),
        Step("smr_single", "SMR single   POST /v1/events", True, "/v1/events", *single, 1),
        Step(
            "bare_batch",
            f"bare batch   POST /events/batch x{BATCH_SIZE}",
            False,
            "/events/batch",
            *batch,
            BATCH_SIZE,
        ),
        Step(
            "smr_batch",
            f"SMR batch    POST /v1/events x{BATCH_SIZE}",
            True,
            "/v1/events",
            *batch,
            BATCH_SIZE,
        ),
    ]


@dataclass
class Outcome:
    measurements: dict[str, Measurement]
    stored: dict[str, Any]
    expected: dict[str, int]
    log_problems: list[str]
    pg_version: str


def drive_all(options: Options, servers: Servers) -> dict[str, Measurement]:
    run_tag = f"bench-{datetime.now(UTC):%Y%m%d%H%M%S}"
    factory = EventFactory(run=run_tag, contacts=options.contacts, seed=options.seed)
    plain = {"content-type": "application/json"}
    smr_headers = {**plain, "authorization": f"Bearer {INGEST_TOKEN}"}
    measurements: dict[str, Measurement] = {}
    log("driving")
    for step in steps(options):
        if step.per_request == 1:
            warm, timed = factory.singles(step.warmup), factory.singles(step.timed)
        else:
            warm = factory.batches(step.warmup, step.per_request)
            timed = factory.batches(step.timed, step.per_request)
        measurement = asyncio.run(
            measure(
                step.key,
                servers.smr if step.on_smr else servers.bare,
                step.path,
                warmup=warm,
                timed=timed,
                events_per_request=step.per_request,
                concurrency=options.concurrency,
                headers=smr_headers if step.on_smr else plain,
            )
        )
        if measurement.failures:
            log(f"  {step.key}: {len(measurement.failures)} failed requests")
        measurements[step.key] = measurement
    return measurements


def execute(options: Options, started: list[Server], tmp: Path) -> tuple[Outcome, Servers]:
    """Database, servers, load; the servers started are appended to ``started``."""
    db_dsn = database_dsn(options.pg, options.database)
    log(f"database {options.database}: recreating")
    pg_version = asyncio.run(recreate_database(options.pg, options.database))
    extra = (
        {} if options.max_backlog is None else {"SMR_INGEST__MAX_BACKLOG": str(options.max_backlog)}
    )
    servers = prepare_servers(tmp, db_dsn, smr_cli=options.smr_cli, smr_extra=extra)
    for server in (servers.bare, servers.smr):
        log(f"{server.name}: starting on port {server.port}")
        started.append(server)
        server.start()
    servers.bare.wait_ready()
    ready = servers.smr.wait_ready()
    if ready.get("playbooks") != PLAYBOOK_COUNT:
        log(f"warning: SMR reports {ready.get('playbooks')} playbooks loaded")
    measurements = drive_all(options, servers)
    bare = measurements["bare_single"].answered_events + measurements["bare_batch"].answered_events
    smr = measurements["smr_single"].answered_events + measurements["smr_batch"].answered_events
    outcome = Outcome(
        measurements=measurements,
        stored=asyncio.run(stored_counts(db_dsn)),
        expected={"bare_events": bare, "events": smr},
        log_problems=servers.smr.log_problems() + servers.bare.log_problems(),
        pg_version=pg_version,
    )
    return outcome, servers


async def stored_counts(dsn: str) -> dict[str, Any]:
    """What the servers wrote: rows per table, SMR's events by status, runs per playbook."""
    conn = await asyncpg.connect(dsn)
    try:
        counts: dict[str, Any] = {}
        for table in ("bare_events", "events", "event_log", "contacts", "runs", "deliveries"):
            counts[table] = await count_rows(conn, table)
        for key, sql in (
            ("events_by_status", "SELECT status, count(*) FROM events GROUP BY 1 ORDER BY 1"),
            ("runs_by_playbook", "SELECT playbook_id, count(*) FROM runs GROUP BY 1 ORDER BY 1"),
        ):
            try:
                counts[key] = {str(r[0]): int(r[1]) for r in await conn.fetch(sql)}
            except asyncpg.PostgresError as exc:
                counts[key] = f"unavailable: {exc}"
        return counts
    finally:
        await conn.close()


def setup_of(options: Options, servers: Servers, outcome: Outcome) -> dict[str, Any]:
    return {
        **servers.description,
        "concurrency": options.concurrency,
        "single": options.single,
        "batches": options.batches,
        "batch_size": BATCH_SIZE,
        "warmup": options.warmup,
        "batch_warmup": options.batch_warmup,
        "contacts": options.contacts,
        "playbooks": PLAYBOOK_COUNT,
        "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "postgres_version": outcome.pg_version,
        "httpx": httpx.__version__,
    }


# --------------------------------------------------------------------------------------------
# Main


def run(options: Options) -> int:
    started: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="smr-bench-") as tmp_name:
        with dropped_afterwards(options.pg, options.database, keep=options.keep_db):
            try:
                outcome, servers = execute(options, started, Path(tmp_name))
            finally:
                for server in reversed(started):
                    server.stop()
        # The logs live in the temporary folder: read what is needed before it goes.
        failed = [m for m in outcome.measurements.values() if m.failures]
        failure_text = [
            f"{m.name}: {len(m.failures)} failed requests, first ones:\n"
            + "\n".join(f"  {f}" for f in m.failures[:5])
            + f"\n{m.server.name} output, last lines:\n{m.server.log_tail()}"
            for m in failed
        ]
    summary = summarise(outcome.measurements)
    setup = setup_of(options, servers, outcome)
    labels = {step.key: step.label for step in steps(options)}
    print_report([(labels[k], m) for k, m in outcome.measurements.items()], summary, setup)
    notes = consistency_notes(outcome.measurements, outcome.stored, outcome.expected)
    notes += [f"logged: {line}" for line in outcome.log_problems[:10]]
    for note in notes:
        print(f"note: {note}")
    report = {
        "benchmark": "ingest",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "summary": summary,
        "targets": {
            "single_ratio": TARGET_SINGLE_RATIO,
            "batch_events_per_s": TARGET_BATCH_EVENTS_PER_S,
            "batch_ratio": TARGET_BATCH_RATIO,
        },
        "measurements": {k: m.as_json() for k, m in outcome.measurements.items()},
        "stored": outcome.stored,
        "expected": outcome.expected,
        "notes": notes,
        "setup": setup,
    }
    write_results(RESULTS_FILE, report)
    for text in failure_text:
        log(f"error: {text}")
    print_json_line(report)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    return guarded_main(run, parse_args(argv), interrupted="servers stopped")


if __name__ == "__main__":
    sys.exit(main())
