"""SMR at scale: a million future rows, a worker under steady load, a million-contact fan-out.

One run, on the local PostgreSQL:

1. creates a fresh database (``smr_scale``), migrates it with ``smr.migrations`` and seeds, with
   binary COPY, ``--rows`` contacts (a phone each), as many runs waiting until a time in the next
   30 days and as many deliveries scheduled in the next 30 days; then VACUUM ANALYZE;
2. claim latency: a feed inserts ``--due-per-s`` due deliveries and as many due runs per second
   for ``--seconds``; every ``--claim-interval`` this process calls the Dispatcher's and the
   processors' due-run read (``repositories.deliveries`` / ``repositories.runs``, batch size and
   lease as the Settings defaults) and times each transaction; the claim statements, as SMR
   sent them, are shown under EXPLAIN ANALYZE (custom and generic plan);
3. worker: starts ``smr worker`` (mock channel, latency 0, no quiet hours or caps) on that
   database, feeds it ``--due-per-s`` deliveries due now for ``--seconds``, waits until all are
   handled, reads lateness (``sent_at - due_at``) from the table and samples the worker's RSS;
4. cron fan-out: a schedule playbook (``0 10 * * 5``, audience ``tags_any: [会员]``, one send)
   fires once with ``--audience``/10 tagged contacts, then once with ``--audience``, each in a
   fresh process driving ``Cron.tick`` with a clock just past the slot; runs/s and RSS;
5. prints a table (metric, measured, target, verdict), writes ``bench/results/scale.json``
   (git-ignored) and prints the same JSON as the last line of stdout; drops the database,
   whatever happened (``--keep-db`` keeps it).

Targets: claim p99 < 50 ms and worker RSS < 300 MB with the million future rows present;
lateness p99 < 2 s at 1,000 due/s; a fan-out to ``--audience`` contacts at >= 20,000 runs/s with
flat memory (its RSS growth at most 32 MiB above that of the fan-out to a tenth as many).
Missing a target does not change the exit code; it is 1 only when a correctness check fails
(rows not handled, runs missing) or the run cannot complete.

    .venv/bin/python bench/scale.py [--rows 1000000] [--audience 1000000] [--seconds 30]
    .venv/bin/python bench/scale.py --quick      # 100,000 rows and contacts, 10 s phases
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
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.harness.common import busy_notes, guarded_main, log, package_versions, write_results
from bench.harness.db import (
    create_database,
    database_dsn,
    drop_database,
    server_settings,
    sqlalchemy_url,
)
from bench.scale_claims import ClaimResult, describe, measure_claims
from bench.scale_common import MIB, Options
from bench.scale_fanout import FanoutResult, measure_fanout
from bench.scale_seed import seed_base, vacuum_analyze
from bench.scale_worker import WorkerResult, measure_worker
from smr.migrations import upgrade

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_FILE = BENCH_DIR / "results" / "scale.json"
PHASES = ("claims", "worker", "fanout")
SEEDED_TABLES = ("contacts", "contact_identities", "runs", "deliveries")
TARGET_CLAIM_P99_MS = 50.0
TARGET_WORKER_RSS_MB = 300.0  # MB: 300 * 10**6 bytes
TARGET_LATENESS_P99_S = 2.0
TARGET_RUNS_PER_S = 20_000.0
TARGET_FLAT_MIB = 32.0

# --------------------------------------------------------------------------------------------
# Options


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        description="SMR at scale: claim latency, worker RSS and lateness, cron fan-out.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--rows", type=int, help="future waiting runs and scheduled deliveries (default 1000000)"
    )
    parser.add_argument(
        "--audience", type=int, help="contacts the cron playbook reaches (default 1000000)"
    )
    parser.add_argument(
        "--seconds", type=float, help="length of the claim and worker feeds (default 30)"
    )
    parser.add_argument("--due-per-s", type=int, default=1_000, help="rows due per second fed")
    parser.add_argument(
        "--claim-interval", type=float, default=0.1, help="seconds between two claims"
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 100,000 rows and contacts, 10 s feeds"
    )
    parser.add_argument(
        "--phases", default=",".join(PHASES), help="comma-separated subset of " + ",".join(PHASES)
    )
    parser.add_argument(
        "--profile-fanout",
        action="store_true",
        help="run the full fan-out under cProfile and print its top functions (slower)",
    )
    parser.add_argument(
        "--pg",
        default=os.environ.get("SMR_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="maintenance DSN used to create and drop the bench database (env SMR_BENCH_PG)",
    )
    parser.add_argument("--database", default="smr_scale", help="bench database, recreated")
    parser.add_argument("--keep-db", action="store_true", help="keep the database afterwards")
    ns = parser.parse_args(argv)
    size = 100_000 if ns.quick else 1_000_000
    rows = size if ns.rows is None else ns.rows
    audience = size if ns.audience is None else ns.audience
    seconds = (10.0 if ns.quick else 30.0) if ns.seconds is None else ns.seconds
    phases = tuple(p.strip() for p in ns.phases.split(",") if p.strip())
    if rows < 1 or audience < 10:
        parser.error("--rows must be at least 1 and --audience at least 10")
    if seconds <= 0 or ns.due_per_s < 10 or ns.claim_interval < 0:
        parser.error("--seconds must be positive, --due-per-s at least 10")
    if unknown := set(phases) - set(PHASES):
        parser.error(f"unknown phases {sorted(unknown)}; choose from {', '.join(PHASES)}")
    if not ns.database.replace("_", "").isalnum() or ns.database.startswith("test"):
        parser.error("--database must be letters, digits and underscores, not test*")
    return Options(
        rows=rows,
        audience=audience,
        seconds=seconds,
        due_per_s=ns.due_per_s,
        claim_interval=ns.claim_interval,
        pg=ns.pg,
        database=ns.database,
        keep_db=ns.keep_db,
        quick=ns.quick,
        phases=phases,
        profile_fanout=ns.profile_fanout,
    )


# --------------------------------------------------------------------------------------------
# Phases


def print_claims(r: ClaimResult) -> None:
    print(
        f"\n[1] claim latency: {r.deliveries_inserted:,} deliveries and {r.runs_inserted:,} runs "
        f"fed at {r.due_per_s:,}/s each over {r.seconds:.1f}s, a claim of each every "
        f"{r.claim_interval_s}s (limit {r.batch_size})"
    )
    for name, stats, rows in (
        ("deliveries (mark_uncertain + claim_due)", r.delivery_claims, r.rows_per_delivery_claim),
        ("runs (due, all partitions)", r.run_claims, r.rows_per_run_claim),
    ):
        print(
            f"    {name:<41} n={stats['count']:<5} p50 {stats['p50']:6.1f}  p95 "
            f"{stats['p95']:6.1f}  p99 {stats['p99']:6.1f}  max {stats['max']:6.1f} ms"
            f"  ({rows:.0f} rows/claim)"
        )
    for table, plans in r.plans.items():
        for kind, plan in plans.items():
            print(f"    plan, {table} due claim ({kind}): {describe(plan)}")
    print(f"    cpu: {fmt_cpu(r.cpu)}")


def print_worker(r: WorkerResult) -> None:
    late, rss = r.lateness_s, r.rss_mib
    print(
        f"\n[2] smr worker: {r.inserted:,} deliveries due now fed at {r.due_per_s:,}/s over "
        f"{r.seconds:.0f}s (tick {r.tick_seconds}s, batch {r.batch_size}); {r.handled:,} handled "
        f"{r.statuses}, the last {r.drain_seconds:.1f}s after the feed ended"
    )
    print(
        f"    lateness sent_at - due_at: p50 {late['p50']:.3f}  p95 {late['p95']:.3f}  p99 "
        f"{late['p99']:.3f}  max {late['max']:.3f} s"
    )
    print(
        f"    worker RSS: idle {rss['idle']} MiB, max sampled {rss['max_sampled']} MiB, at the "
        f"end {rss['end']} MiB, peak (VmHWM) {rss['peak_vmhwm']} MiB"
    )
    print(f"    cpu: {fmt_cpu(r.cpu)}")


def print_fanout(r: FanoutResult) -> None:
    print(f"\n[3] cron fan-out (audience seeded in {r.seed_seconds:.0f}s, not timed)")
    for f in (r.small, r.full):
        rss = f.rss_mib
        print(
            f"    {f.audience:>9,} contacts: {f.runs:,} runs in {f.seconds:.1f}s = "
            f"{f.runs_per_s:,.0f} runs/s; RSS start {rss['start']}, max {rss['max']}, end "
            f"{rss['end']} MiB; cpu: {fmt_cpu(f.cpu)}"
        )
        if f.steps is not None:
            print(
                f"    {'':>9}  then one worker's processor: {f.steps.runs:,} runs through their "
                f"steps and sends, {f.steps.dispatched:,} deliveries, in {f.steps.seconds:.1f}s = "
                f"{f.steps.runs_per_s:,.0f} runs/s; cpu: {fmt_cpu(f.steps.cpu)}"
            )
    series = "  ".join(f"{runs // 1000}k:{mib:.0f}" for runs, mib in r.full.series)
    print(f"    RSS (MiB) by runs started, {r.full.audience:,} contacts: {series}")
    if r.full.profile:
        print("    profile of the full fan-out (cProfile, cumulative):")
        print("\n".join("      " + line for line in r.full.profile.splitlines()[:60]))


def fmt_cpu(cpu: dict[str, float | None]) -> str:
    return ", ".join(f"{k} {'n/a' if v is None else f'{v:.2f}'}" for k, v in cpu.items())


# --------------------------------------------------------------------------------------------
# Verdicts


def verdicts(
    claims: ClaimResult | None, worker: WorkerResult | None, fanout: FanoutResult | None
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def add(metric: str, measured: float, target: str, met: bool, unit: str) -> None:
        rows.append(
            {"metric": metric, "measured": measured, "unit": unit, "target": target, "met": met}
        )

    if claims is not None:
        for name, stats in (("deliveries", claims.delivery_claims), ("runs", claims.run_claims)):
            p99 = stats["p99"]
            add(f"claim p99, {name}", p99, f"< {TARGET_CLAIM_P99_MS:.0f} ms",
                p99 < TARGET_CLAIM_P99_MS, "ms")  # fmt: skip
    if worker is not None:
        peak = worker.rss_mib["peak_vmhwm"] or worker.rss_mib["max_sampled"] or 0.0
        mb = round(peak * MIB / 1e6, 1)
        add("worker RSS, peak", mb, f"< {TARGET_WORKER_RSS_MB:.0f} MB",
            mb < TARGET_WORKER_RSS_MB, "MB")  # fmt: skip
        p99 = worker.lateness_s["p99"]
        add(f"lateness p99 at {worker.due_per_s:,} due/s", p99,
            f"< {TARGET_LATENESS_P99_S:.0f} s", p99 < TARGET_LATENESS_P99_S, "s")  # fmt: skip
    if fanout is not None:
        rate = fanout.full.runs_per_s
        add(f"fan-out runs/s, {fanout.full.audience:,} contacts", rate,
            f">= {TARGET_RUNS_PER_S:,.0f}", rate >= TARGET_RUNS_PER_S, "runs/s")  # fmt: skip
        small, full = fanout.growth_mib
        extra = round(full - small, 1)
        add(f"fan-out RSS growth, N vs N/10 ({full} vs {small} MiB)", extra,
            f"< {TARGET_FLAT_MIB:.0f} MiB more", extra < TARGET_FLAT_MIB, "MiB")  # fmt: skip
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    header = f"{'metric':<52}{'measured':>14}  {'target':<18}{'verdict':<8}"
    print()
    print(header)
    print("-" * len(header))
    for r in rows:
        value = r["measured"]
        shown = f"{value:,.0f}" if value >= 1000 else f"{value:,.2f}".rstrip("0").rstrip(".")
        print(
            f"{r['metric']:<52}{shown + ' ' + r['unit']:>14}  {r['target']:<18}"
            f"{'met' if r['met'] else 'missed':<8}"
        )
    print("-" * len(header))


def timed_phases(
    claims: ClaimResult | None, worker: WorkerResult | None, fanout: FanoutResult | None
) -> list[tuple[str, dict[str, float | None]]]:
    """Each phase that ran, with the cores busy meanwhile."""
    phases: list[tuple[str, dict[str, float | None]]] = []
    if claims is not None:
        phases.append(("claim latency", claims.cpu))
    if worker is not None:
        phases.append(("worker", worker.cpu))
    if fanout is not None:
        phases += [("fan-out N/10", fanout.small.cpu), ("fan-out N", fanout.full.cpu)]
        if fanout.full.steps is not None:
            phases.append(("steps after fan-out N", fanout.full.steps.cpu))
    return phases


# --------------------------------------------------------------------------------------------
# Main


def run(options: Options) -> int:
    dsn = database_dsn(options.pg, options.database)
    url = sqlalchemy_url(dsn)
    claims = worker = fanout = None
    failures: list[str] = []
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="smr-bench-scale-") as tmp:
            log(f"creating database {options.database}")
            postgres_version = asyncio.run(create_database(options.pg, options.database))
            upgrade(url)
            log(f"seeding {options.rows:,} contacts, waiting runs and scheduled deliveries")
            seed_seconds = asyncio.run(seed_base(dsn, options.rows, log))
            asyncio.run(vacuum_analyze(dsn, SEEDED_TABLES))
            settings = asyncio.run(server_settings(dsn))
            print(
                f"SMR scale benchmark. PostgreSQL {postgres_version} ({fmt_settings(settings)}), "
                f"{os.cpu_count()} CPUs. Seeded {options.rows:,} contacts, future waiting runs "
                f"and future scheduled deliveries in {seed_seconds:.0f}s (COPY, not timed)."
            )
            if "claims" in options.phases:
                log("phase 1: claim latency")
                claims = asyncio.run(measure_claims(url, dsn, options))
                print_claims(claims)
            if "worker" in options.phases:
                asyncio.run(vacuum_analyze(dsn, ("runs", "deliveries")))
                log("phase 2: smr worker")
                worker = asyncio.run(measure_worker(url, dsn, options, Path(tmp)))
                print_worker(worker)
                failures += worker_failures(worker)
            if "fanout" in options.phases:
                tenth, whole = options.audience // 10, options.audience
                log(f"phase 3: cron fan-out to {tenth:,}, then {whole:,} contacts")
                fanout = asyncio.run(measure_fanout(url, dsn, options, Path(tmp)))
                print_fanout(fanout)
                failures += fanout.failures
    finally:
        if not options.keep_db:
            asyncio.run(drop_database(options.pg, options.database))
    table = verdicts(claims, worker, fanout)
    summary: dict[str, Any] = {
        "setup": {
            "postgres_version": postgres_version,
            "postgres_settings": settings,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            **package_versions("sqlalchemy", "asyncpg"),
            "rows": options.rows,
            "audience": options.audience,
            "seconds": options.seconds,
            "due_per_s": options.due_per_s,
            "quick": options.quick,
            "database": options.database,
            "wall_seconds": round(time.perf_counter() - started, 1),
        },
        "claims": asdict(claims) if claims else None,
        "worker": asdict(worker) if worker else None,
        "fanout": asdict(fanout) if fanout else None,
        "verdicts": table,
        "checks_failed": failures,
        "notes": busy_notes(timed_phases(claims, worker, fanout)),
        "ok": not failures,
    }
    print_table(table)
    for note in summary["notes"]:
        print(f"note: {note}")
    write_results(RESULTS_FILE, summary)
    for text in failures:
        log(f"check failed: {text}")
    print(json.dumps(summary, ensure_ascii=False, separators=(",", ":")), flush=True)
    return 1 if failures else 0


def fmt_settings(settings: dict[str, str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(settings.items()))


def worker_failures(r: WorkerResult) -> list[str]:
    failures = list(r.problems)
    if r.statuses != {"sent": r.inserted}:
        failures.append(f"worker deliveries by status {r.statuses}, expected {r.inserted} sent")
    return failures


def main(argv: Sequence[str] | None = None) -> int:
    return guarded_main(run, parse_args(argv), interrupted="database dropped")


if __name__ == "__main__":
    sys.exit(main())
