"""A playbook's report on PostgreSQL: 90 days of a playbook with a million runs.

```
.venv/bin/python bench/reports.py                       # 20 playbooks, 90 days, 32 shards
```

1. Recreates ``smr_bench_reports``, migrates it, and seeds ``playbook_counts`` as a million
   runs of one playbook over ``--days`` days would leave it, at its worst: every count on
   every day in every one of the 32 shards (a shard per concurrent writer), for the run
   (started, completed, exited by rule, refused by two reasons) and two send steps
   (scheduled, sent, skipped by two reasons, failed); ``--playbooks`` playbooks alike, so
   the one asked for is a slice of the table. ``VACUUM ANALYZE`` (this machine's server runs
   with autovacuum off).
2. Times ``GET /v1/playbooks/{id}/report``'s work (``smr.services.report.report``: the sum
   and its shaping into totals, versions, steps and days) over the ``--days`` days, best of
   ``--repeat``, next to the peer at its best: the bare ``SUM … GROUP BY`` of the same rows
   through asyncpg, nothing shaped.

Target (issue 22): the report answers in < 500 ms.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from bench.harness.common import RESULTS_DIR, best_of, finish, log
from bench.harness.db import (
    add_database_options,
    database_dsn,
    dropped_afterwards,
    server_settings,
    sqlalchemy_url,
)
from bench.harness.scratch import migrated_database
from smr.db import create_engine, session_factory
from smr.services.report import Range, report

TARGET_SECONDS = 0.5
RUNS = 1_000_000
PLAYBOOK = "playbook-0"
METRICS = [
    ("", "run.started"),
    ("", "run.completed"),
    ("exit_on[0]", "run.exited"),
    ("", "run.refused.condition_false"),
    ("", "run.refused.refused_cooldown"),
    *[
        (step, metric)
        for step in ("steps[1]", "steps[3]")
        for metric in (
            "send.scheduled",
            "send.sent",
            "send.skipped.opted_out",
            "send.skipped.frequency_capped",
            "send.failed",
        )
    ],
]
SEED = """
INSERT INTO playbook_counts (playbook_id, day, version, step, metric, shard, n)
SELECT 'playbook-' || p, to_char($1::date + d, 'YYYY-MM-DD'), 'v1', m.step, m.metric, s, $2
FROM generate_series(0, $3 - 1) p, generate_series(0, $4 - 1) d, generate_series(0, 31) s,
     unnest($5::text[], $6::text[]) AS m(step, metric)
"""
PEER = """
SELECT day, version, step, metric, sum(n) FROM playbook_counts
WHERE playbook_id = $1 AND day >= $2 AND day <= $3
GROUP BY day, version, step, metric
"""


@dataclass(frozen=True)
class Options:
    pg: str
    database: str
    keep_db: bool
    playbooks: int
    days: int
    repeat: int
    results: Path


async def seed(dsn: str, options: Options, first: date) -> int:
    per_row = max(RUNS // options.days // 32, 1)
    steps, metrics = [s for s, _ in METRICS], [m for _, m in METRICS]
    conn = await asyncpg.connect(dsn)
    try:
        args = (first, per_row, options.playbooks, options.days, steps, metrics)
        await conn.execute(SEED, *args)
        await conn.execute("VACUUM ANALYZE playbook_counts")
        return int(await conn.fetchval("SELECT count(*) FROM playbook_counts"))
    finally:
        await conn.close()


async def measure(dsn: str, options: Options, span: Range) -> dict[str, Any]:
    engine = create_engine(sqlalchemy_url(dsn))
    sessions = session_factory(engine)
    try:

        async def ours() -> dict[str, Any]:
            async with sessions() as session:
                return await report(session, PLAYBOOK, span)

        ours_s, found = await best_of(options.repeat, ours)
    finally:
        await engine.dispose()
    conn = await asyncpg.connect(dsn)
    try:
        since, until = span.since.isoformat(), span.until.isoformat()

        async def peer() -> list[Any]:
            return list(await conn.fetch(PEER, PLAYBOOK, since, until))

        peer_s, rows = await best_of(options.repeat, peer)
    finally:
        await conn.close()
    assert found["runs"]["started"] == sum(r[4] for r in rows if r[3] == "run.started")
    return {
        "runs_started": found["runs"]["started"],
        "report_seconds": ours_s,
        "peer_seconds": peer_s,
        "ratio": ours_s / peer_s if peer_s else 0.0,
    }


def run(options: Options) -> int:
    dsn = database_dsn(options.pg, options.database)
    first = date(2026, 9, 1)
    span = Range(first, first + timedelta(days=options.days - 1))
    with dropped_afterwards(options.pg, options.database, keep=options.keep_db):
        version, _ = migrated_database(options.pg, options.database)
        rows = asyncio.run(seed(dsn, options, first))
        log(f"seeded {rows:,} count rows")
        measured = asyncio.run(measure(dsn, options, span))
        log(f"report: {measured}")
        settings = asyncio.run(server_settings(dsn))
    ok = float(measured["report_seconds"]) < TARGET_SECONDS
    result = {
        "server_version": version,
        "server_settings": settings,
        "playbooks": options.playbooks,
        "days": options.days,
        "count_rows": rows,
        "measured": measured,
        "target": {"report_seconds_below": TARGET_SECONDS, "met": ok},
    }
    failures = [] if ok else [f"the report took {measured['report_seconds']:.3f} s"]
    return finish(options.results, result, failures, label="reports")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_database_options(parser, database="smr_bench_reports")
    parser.add_argument("--playbooks", type=int, default=20)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--results", type=Path, default=RESULTS_DIR / "reports.json")
    args = parser.parse_args()
    return run(
        Options(
            args.pg,
            args.database,
            args.keep_db,
            args.playbooks,
            args.days,
            args.repeat,
            args.results,
        )
    )


if __name__ == "__main__":
    raise SystemExit(main())
