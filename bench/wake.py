"""Waking runs end to end: one ``smr worker`` takes many runs whose wait ends at the same
moment through their ``send`` step to the mock channel, against APScheduler 3.

"Everyone who paid yesterday hears from us at 10:00": one run:

1. recreates the database ``smr_bench_wake`` (``--database``), migrates it and writes a
   playbooks folder with one playbook, ``bench-wake`` (``order.paid`` → ``wait: 1d`` → ``send``
   on ``mock``, category ``service``) and policies without quiet hours or caps;
2. SMR, in this process (mock latency 0), accepts ``--runs`` ``order.paid`` events (from a pool of
   as many customers) in batches of 100 and processes them: one ``waiting`` run each (not timed);
3. makes every waiting run due a second ago with one ``UPDATE``, then ``VACUUM ANALYZE``;
4. starts ONE ``smr worker`` (the real command, SMR's default batch size, lanes and tick) and
   polls ``mock_outbox`` every 0.2 s until it holds one row per run, reading meanwhile the CPU
   of the worker and of every ``postgres`` process; the runs/s are counted from the worker's
   start and from the first outbox row to the last; then the worker is stopped;
5. checks that every run completed, every delivery was sent and has exactly one outbox row;
6. baseline, the same number of messages: APScheduler 3 with one ``date`` job per message in
   a ``SQLAlchemyJobStore`` on the same PostgreSQL, each job writing one outbox row
   (``bench/dispatch.py``'s, reused as it is);
7. prints a table and the verdicts, writes ``bench/results/wake.json`` (git-ignored), prints
   it as JSON on the last line of stdout and drops the database (``--keep-db`` keeps it).

Targets: at least 5,000 runs/s from the worker's start, and at least 10x the baseline's
messages/s. Missing a target does not change the exit code; it is 1 when a check fails or the
run cannot complete.

    .venv/bin/python bench/wake.py [--runs 50000] [--baseline N] [--lanes 2]
        [--database smr_bench_wake]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import dispatch
from bench.harness.common import (
    RESULTS_DIR,
    busy_notes,
    finish,
    fmt_cpu,
    guarded_main,
    log,
    package_versions,
    verdict,
)
from bench.harness.db import (
    add_database_options,
    check_database_name,
    create_database,
    database_dsn,
    dropped_afterwards,
    sqlalchemy_url,
)
from bench.harness.servers import smr_env
from bench.process_throughput import bound_by
from bench.wake_seed import (
    Seeded,
    WorkerResult,
    measure_worker,
    prepare,
    worker_failures,
    write_playbooks,
)
from smr.config import IngestSettings, Settings
from smr.migrations import upgrade

RESULTS_FILE = RESULTS_DIR / "wake.json"
TARGET_RUNS_PER_S = 5_000.0
TARGET_RATIO = 10.0
Cpu = dict[str, float | None] | None
#: The worker's settings shown (SMR's defaults: the bench sets none of them).
WORKER_SETTINGS = ("batch_size", "dispatch_lanes", "tick_seconds", "lease_seconds")


@dataclass(frozen=True)
class Options:
    runs: int
    baseline: int
    baseline_mode: str
    seed: int
    timeout: float
    pg: str
    database: str
    keep_db: bool
    lanes: int


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        description="One smr worker waking many runs due at once, against APScheduler 3.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--runs", type=int, default=50_000, help="runs woken (events, from as many customers)"
    )
    parser.add_argument(
        "--baseline", type=int, default=None, help="APScheduler jobs (messages); default --runs"
    )
    parser.add_argument(
        "--baseline-mode",
        choices=("paused", "running"),
        default="paused",
        help="as bench/dispatch.py: jobs added to a paused scheduler, then resumed, or to a "
        "running one",
    )
    parser.add_argument("--seed", type=int, default=20261208, help="seed of the generated events")
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds the worker may take, at most"
    )
    add_database_options(parser, database="smr_bench_wake")
    lanes = IngestSettings.model_fields["lanes"].default
    parser.add_argument(
        "--lanes", type=int, default=lanes, help="the worker's SMR_INGEST__LANES (processor lanes)"
    )
    ns = parser.parse_args(argv)
    if ns.runs < 1 or (ns.baseline is not None and ns.baseline < 1) or ns.lanes < 1:
        parser.error("--runs, --baseline and --lanes must be at least 1")
    if ns.timeout <= 0:
        parser.error("--timeout must be positive")
    check_database_name(parser, ns.database)
    return Options(
        runs=ns.runs,
        baseline=ns.runs if ns.baseline is None else ns.baseline,
        baseline_mode=ns.baseline_mode,
        seed=ns.seed,
        timeout=ns.timeout,
        pg=ns.pg,
        database=ns.database,
        keep_db=ns.keep_db,
        lanes=ns.lanes,
    )


# --------------------------------------------------------------------------------------------
# Baseline: bench/dispatch.py's APScheduler 3


def measure_baseline(options: Options, dsn: str) -> dispatch.BaselineResult:
    log(f"APScheduler: {options.baseline:,} jobs ({options.baseline_mode})")
    plan = dispatch.Options(
        deliveries=options.baseline,
        batch_size=Settings.model_fields["batch_size"].default,
        warmup_batches=0,
        lanes=Settings.model_fields["dispatch_lanes"].default,
        baseline=options.baseline,
        baseline_cap=options.baseline,
        baseline_mode=options.baseline_mode,
        pg=options.pg,
        database=options.database,
        keep_db=options.keep_db,
    )
    asyncio.run(dispatch.prepare_baseline_table(dsn))
    return asyncio.run(dispatch.measure_baseline(dsn, plan))


# --------------------------------------------------------------------------------------------
# Report


def summarise(smr: WorkerResult, base: dispatch.BaselineResult) -> dict[str, Any]:
    rate = smr.from_start or 0.0
    ratio = rate / base.messages_per_s if base.messages_per_s else 0.0
    first = (smr.from_first_row or 0.0) / base.messages_per_s if base.messages_per_s else 0.0
    return {
        "runs_per_s_from_worker_start": smr.from_start,
        "runs_per_s_from_first_outbox_row": smr.from_first_row,
        "runs_per_s_sent_at_span": smr.rate(smr.first_row, smr.last_sent_at),
        "baseline_messages_per_s": base.messages_per_s,
        "ratio": round(ratio, 2),
        "ratio_from_first_outbox_row": round(first, 2),
        "rate_pass": rate >= TARGET_RUNS_PER_S,
        "ratio_pass": ratio >= TARGET_RATIO,
    }


def fmt_s(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds:.2f}"


def _row(label: str, count: int, seconds: float | None, rate: float | None, cpu: Cpu) -> str:
    shown = fmt_s(seconds)
    cores = "".join(f"{fmt_cpu(cpu[k]) if cpu else '':>9}" for k in ("app", "postgres", "other"))
    return f"{label:<42}{count:>7}{shown:>9}{'n/a' if rate is None else f'{rate:,.0f}':>9}{cores}"


def _span(since: float | None, until: float | None) -> float | None:
    return None if since is None or until is None else until - since


def _cores(cpu: dict[str, float | None], app: str) -> Cpu:
    return {"app": cpu.get(app), "postgres": cpu.get("postgres"), "other": cpu.get("other")}


def print_report(smr: WorkerResult, base: dispatch.BaselineResult, report: dict[str, Any]) -> None:
    setup, summary = report["setup"], report["summary"]
    print(
        f"\nWaking runs: one smr worker ({setup['worker']}), mock latency 0; PostgreSQL "
        f"{setup['postgres_version']}, {setup['cpus']} CPUs, load average before "
        f"{setup['load_average_before']}. Baseline: APScheduler {setup['packages']['apscheduler']}"
        f" + SQLAlchemyJobStore, one date job per message ({base.mode} scheduler)."
    )
    header = f"{'measurement':<42}{'count':>7}{'seconds':>9}{'per s':>9}"
    header += f"{'cpu:app':>9}{'postgres':>9}{'other':>9}"
    print(header + "\n" + "-" * len(header))
    rows = (
        ("SMR worker start -> all outbox rows", smr.runs, smr.all_rows, smr.from_start,
         _cores(smr.cpu, "worker")),
        ("SMR first outbox row -> all rows", smr.runs, _span(smr.first_row, smr.all_rows),
         smr.from_first_row, _cores(smr.cpu_sending, "worker")),
        ("SMR first -> last outbox sent_at", smr.runs, _span(smr.first_row, smr.last_sent_at),
         summary["runs_per_s_sent_at_span"], None),
        ("APScheduler add_job only", base.messages, base.add_seconds, base.scheduled_per_s, None),
        ("APScheduler add_job -> last job done", base.messages, base.seconds,
         base.messages_per_s, _cores(base.cpu, "bench_process")),
    )  # fmt: skip
    for row in rows:
        print(_row(*row))
    print("-" * len(header))
    print("cpu: cores busy (1.00 = one core); app = the smr worker or the APScheduler process")
    print(
        f"seconds from the worker's start: runs woken {fmt_s(smr.first_woken)} to "
        f"{fmt_s(smr.last_woken)} (before: its start-up), outbox rows {fmt_s(smr.first_row)} to "
        f"{fmt_s(smr.last_sent_at)}, every delivery marked sent {fmt_s(smr.settled)}"
    )
    for label, sending in (("from the worker's start", False), ("from the first row", True)):
        per_run = smr.cpu_ms_per_run(sending=sending)
        print(f"CPU ms per run, {label}: " + ", ".join(f"{k} {v:.3f}" for k, v in per_run.items()))
    print(f"bound by {bound_by(smr.cpu, setup['cpus'])}")
    print(
        f"SMR: {summary['runs_per_s_from_worker_start'] or 0:,.0f} runs/s from the worker's "
        f"start (target >= {TARGET_RUNS_PER_S:,.0f})  {verdict(summary['rate_pass'])}"
    )
    print(
        f"SMR / APScheduler: {summary['ratio']:.1f}x (from the first outbox row "
        f"{summary['ratio_from_first_outbox_row']:.1f}x; target >= {TARGET_RATIO:.0f}x)  "
        f"{verdict(summary['ratio_pass'])}"
    )
    for line in report["notes"] + smr.logged[:10]:
        print(f"note: {line}")


# --------------------------------------------------------------------------------------------
# Main


def setup_of(
    options: Options, postgres_version: str, seeded: Seeded, load_before: tuple[float, ...]
) -> dict[str, Any]:
    defaults = Settings.model_fields
    return {
        "runs": options.runs,
        "baseline": options.baseline,
        "seed": options.seed,
        "database": options.database,
        "postgres_version": postgres_version,
        "cpus": os.cpu_count() or 1,
        "load_average_before": [round(x, 2) for x in load_before],
        "python": platform.python_version(),
        "packages": package_versions("sqlalchemy", "asyncpg", "apscheduler", "psycopg"),
        "worker": {
            **{name: defaults[name].default for name in WORKER_SETTINGS},
            "lanes": options.lanes,
        },
        "seeded": asdict(seeded),
    }


def run(options: Options) -> int:
    dsn = database_dsn(options.pg, options.database)
    load_before = os.getloadavg()
    with (
        tempfile.TemporaryDirectory(prefix="smr-bench-wake-") as name,
        dropped_afterwards(options.pg, options.database, keep=options.keep_db),
    ):
        tmp = Path(name)
        log(f"creating database {options.database}")
        postgres_version = asyncio.run(create_database(options.pg, options.database))
        upgrade(sqlalchemy_url(dsn))
        playbooks, data_dir = tmp / "playbooks", tmp / "data"
        write_playbooks(playbooks)
        seeded = prepare(
            dsn, runs=options.runs, seed=options.seed, playbooks=playbooks, data_dir=data_dir
        )
        mock = {"SMR_MOCK__LATENCY_MS": "0", "SMR_MOCK__FAIL_RATE": "0"}
        lanes = {"SMR_INGEST__LANES": str(options.lanes)}
        env = smr_env(dsn, playbooks, data_dir, **mock, **lanes)
        smr = measure_worker(env, dsn=dsn, tmp=tmp, runs=options.runs, timeout=options.timeout)
        base = measure_baseline(options, dsn)
    failed = worker_failures(smr) + base.failures
    setup = setup_of(options, postgres_version, seeded, load_before)
    report: dict[str, Any] = {
        "benchmark": "wake",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "setup": setup,
        "smr": {
            **asdict(smr),
            "cpu_ms_per_run": smr.cpu_ms_per_run(),
            "cpu_ms_per_run_sending": smr.cpu_ms_per_run(sending=True),
        },
        "baseline": asdict(base),
        "summary": summarise(smr, base),
        "targets": {"runs_per_s": TARGET_RUNS_PER_S, "ratio": TARGET_RATIO},
        "notes": busy_notes([("SMR", smr.cpu), ("APScheduler", base.cpu)]),
        "checks_failed": failed,
        "ok": not failed,
    }
    print_report(smr, base, report)
    return finish(RESULTS_FILE, report, failed, label="check failed")


def main(argv: Sequence[str] | None = None) -> int:
    return guarded_main(run, parse_args(argv), interrupted="worker stopped, database dropped")


if __name__ == "__main__":
    sys.exit(main())
