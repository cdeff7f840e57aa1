"""How fast SMR processes accepted events, and how far behind it runs under a steady rate.

Two phases, each on a freshly created database (``smr_bench_process``) with the 20 playbooks
of ``bench/ingest.py`` (one of which sends on the mock channel) and customers from a pool:

* **throughput**: with no processor running, ``smr api`` accepts ``--events`` events in
  batches; then ONE ``smr worker`` is started and timed from its start until the log is empty
  and every expected delivery is written, then sent to the mock channel, with the CPU of the
  worker and of postgres meanwhile. Target: >= 5,000 events/s from accepted to delivery written.
* **lag**: ``smr api`` and one ``smr worker`` running, events sent open-loop at ``--rate`` for
  ``--duration`` seconds; afterwards, per event from the database, the processing lag
  (``processed_at - received_at``) and accepted to mock send; the RSS of both processes every
  few seconds. Targets: lag p99 < 1 s, accepted to send p99 < 2 s, memory flat.

Prints a table and the verdicts, writes ``bench/results/process.json`` and prints it as JSON on
the last line of stdout; stops the processes and drops the database, also on errors and
Ctrl-C. Exit code 1 when a phase cannot complete (a process fails, requests fail, the events
are not all processed in time); missing a target does not change it.

    .venv/bin/python bench/process.py [--phases throughput,lag] [--events 100000]
        [--rate 1000] [--duration 300] [--lanes 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness.common import (
    RESULTS_DIR,
    finish,
    guarded_main,
    log,
    package_versions,
)
from bench.harness.db import (
    AUTOVACUUM_OFF,
    add_database_options,
    check_database_name,
    create_database,
    database_dsn,
    dropped_afterwards,
    server_settings,
)
from bench.harness.servers import Server, smr_env
from bench.harness.workload import PLAYBOOK_COUNT, write_playbooks
from bench.process_lag import LagPlan, LagResult, measure_lag
from bench.process_report import lag_json, print_lag, print_throughput, throughput_json
from bench.process_throughput import ThroughputResult, measure_throughput

RESULTS_FILE = RESULTS_DIR / "process.json"
LOGS_DIR = RESULTS_DIR / "process-logs"
PHASES = ("throughput", "lag")


@dataclass(frozen=True)
class Options:
    phases: tuple[str, ...]
    events: int
    accept_concurrency: int
    timeout: float
    lag: LagPlan
    pg: str
    database: str
    keep_db: bool
    lanes: int
    segments: int = 0


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        description="SMR's event processing: throughput of one worker, lag under a steady rate.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--phases", default=",".join(PHASES), help="which phases, in order")
    parser.add_argument("--events", type=int, default=100_000, help="throughput: events")
    parser.add_argument("--contacts", type=int, default=20_000, help="distinct customers")
    parser.add_argument(
        "--accept-concurrency", type=int, default=8, help="throughput: batches in flight"
    )
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="seconds to wait for the processing"
    )
    parser.add_argument("--rate", type=float, default=1000.0, help="lag: events per second")
    parser.add_argument(
        "--per-request", type=int, default=10, help="lag: events per request (1: single)"
    )
    parser.add_argument("--duration", type=float, default=300.0, help="lag: seconds of load")
    parser.add_argument(
        "--warmup-seconds",
        type=float,
        default=None,
        help="lag: first seconds left out of the lags and memory baseline "
        "(default: a fifth of --duration, at most 30)",
    )
    parser.add_argument("--rss-interval", type=float, default=2.0, help="lag: RSS sampling, s")
    add_database_options(parser, database="smr_bench_process")
    parser.add_argument("--seed", type=int, default=20261207, help="seed of the generated data")
    parser.add_argument("--lanes", type=int, default=2, help="the worker's SMR_INGEST__LANES")
    parser.add_argument(
        "--segments",
        type=int,
        default=0,
        help="segments defined (each over the customers' spend), evaluated as events are processed",
    )
    ns = parser.parse_args(argv)
    phases = tuple(p.strip() for p in ns.phases.split(",") if p.strip())
    if not phases or set(phases) - set(PHASES):
        parser.error(f"--phases: a comma-separated list of {', '.join(PHASES)}")
    for name in ("events", "contacts", "accept_concurrency", "per_request", "lanes"):
        if getattr(ns, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if ns.rate <= 0 or ns.duration <= 0 or ns.rss_interval <= 0:
        parser.error("--rate, --duration and --rss-interval must be positive")
    check_database_name(parser, ns.database)
    warmup = min(30.0, ns.duration / 5) if ns.warmup_seconds is None else ns.warmup_seconds
    plan = LagPlan(
        events_per_s=ns.rate,
        per_request=ns.per_request,
        seconds=ns.duration,
        warmup_seconds=warmup,
        rss_interval=ns.rss_interval,
        drain_timeout=ns.timeout,
        contacts=ns.contacts,
        seed=ns.seed,
    )
    return Options(
        phases=phases,
        events=ns.events,
        accept_concurrency=ns.accept_concurrency,
        timeout=ns.timeout,
        lag=plan,
        pg=ns.pg,
        database=ns.database,
        keep_db=ns.keep_db,
        lanes=ns.lanes,
        segments=ns.segments,
    )


@dataclass
class Context:
    """One phase's database, folder and environment; the processes it started."""

    dsn: str
    tmp: Path
    env: dict[str, str]
    started: list[Server]


def phase_context(options: Options, tmp: Path, phase: str, max_backlog: int) -> Context:
    log(f"{phase}: database {options.database}: recreating")
    asyncio.run(create_database(options.pg, options.database))
    folder = tmp / phase
    playbooks = folder / "playbooks"
    write_playbooks(playbooks)
    write_segments(playbooks, options.segments)
    dsn = database_dsn(options.pg, options.database)
    ingest = {
        "SMR_INGEST__MAX_BACKLOG": str(max_backlog),
        "SMR_INGEST__LANES": str(options.lanes),
    }
    return Context(dsn, folder, smr_env(dsn, playbooks, folder / "data", **ingest), [])


def write_segments(playbooks: Path, count: int) -> None:
    """``count`` segments, each over the customers' spend and orders."""
    if count:
        (playbooks / "segments").mkdir()
    for index in range(count):
        condition = f"contact.stats.total_spent >= {100 * index} and contact.stats.orders > 0"
        text = f'id: 分层{index}\nif: "{condition}"\n'
        (playbooks / "segments" / f"s{index}.yaml").write_text(text, encoding="utf-8")


def run_throughput(options: Options, tmp: Path) -> ThroughputResult:
    # The whole backlog is accepted before anything processes it: the bound must hold it.
    context = phase_context(options, tmp, "throughput", max(200_000, 2 * options.events))
    try:
        return measure_throughput(
            env=context.env,
            dsn=context.dsn,
            tmp=context.tmp,
            started=context.started,
            events=options.events,
            contacts=options.lag.contacts,
            concurrency=options.accept_concurrency,
            seed=options.lag.seed,
            timeout=options.timeout,
        )
    finally:
        stop_all(context, "throughput")


def run_lag(options: Options, tmp: Path) -> LagResult:
    context = phase_context(options, tmp, "lag", 200_000)
    try:
        return measure_lag(
            options.lag, env=context.env, dsn=context.dsn, tmp=context.tmp, started=context.started
        )
    finally:
        stop_all(context, "lag")


def stop_all(context: Context, phase: str) -> None:
    """Stop the phase's processes; keep the log of any that logged an exception (shutdown
    included) in ``bench/results/process-logs/``, as the temporary folder goes."""
    for server in reversed(context.started):
        server.stop()
    for server in context.started:
        if server.log_problems():
            kept = LOGS_DIR / f"{phase}-{server.log_path.name}"
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(server.log_path, kept)
            log(f"{phase}: {server.name} logged exceptions; its log is kept in {kept}")


def setup_of(options: Options) -> dict[str, Any]:
    return {
        "phases": list(options.phases),
        "events": options.events,
        "contacts": options.lag.contacts,
        "accept_concurrency": options.accept_concurrency,
        "playbooks": PLAYBOOK_COUNT,
        "segments": options.segments,
        "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "packages": package_versions("sqlalchemy", "asyncpg", "fastapi", "uvicorn"),
        "server": asyncio.run(server_settings(options.pg)),
    }


def run(options: Options) -> int:
    setup = setup_of(options)
    report: dict[str, Any] = {"benchmark": "process", "at": "", "phases": {}, "setup": setup}
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="smr-process-") as name:
        tmp = Path(name)
        with dropped_afterwards(options.pg, options.database, keep=options.keep_db):
            for phase in options.phases:
                if phase == "throughput":
                    throughput = run_throughput(options, tmp)
                    cpus = os.cpu_count() or 1
                    print_throughput(throughput, cpus=cpus)
                    report["phases"]["throughput"] = throughput_json(throughput, cpus=cpus)
                    failed += report["phases"]["throughput"]["failures"]
                else:
                    lag = run_lag(options, tmp)
                    print_lag(lag)
                    report["phases"]["lag"] = lag_json(lag)
                    if setup["server"].get("autovacuum") == "off":
                        print(f"note: {AUTOVACUUM_OFF}")
                        report["phases"]["lag"]["notes"].append(AUTOVACUUM_OFF)
                    failed += report["phases"]["lag"]["failures"]
    report["at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return finish(RESULTS_FILE, report, failed, label="error")


def main(argv: Sequence[str] | None = None) -> int:
    return guarded_main(run, parse_args(argv), interrupted="processes stopped")


if __name__ == "__main__":
    sys.exit(main())
