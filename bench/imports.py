"""``smr import`` on PostgreSQL: customers per second, next to a bare COPY of the same rows.

```
.venv/bin/python bench/imports.py                       # 100,000 customers, one order each
.venv/bin/python bench/imports.py --customers 20000 --chunk 5000 --jobs 4
```

1. Writes ``--customers`` JSON lines (a phone, a name, a tag, an attribute, one historical
   order of one SKU), recreates ``smr_bench_import``, migrates it, and imports the file with
   the code ``smr import --jobs N`` runs (``smr.import_command.import_file``; ``--jobs``,
   default: the machine's cores), timed from the start of the processes to the last chunk
   committed. With more than one job, the same file is also imported by one process into a
   fresh database: how the rate scales with processes.
2. The peer at its best: the same customers and orders written with asyncpg's
   ``copy_records_to_table`` into two plain tables (a customer row with its identity, name,
   tags and attributes; an order row), in one transaction: what storing them costs when
   nothing is resolved, merged, counted or checked.
3. Imports the file again and checks that nothing changed (idempotence).

Target (issue 21): >= 20,000 customers/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from tempfile import TemporaryDirectory

import asyncpg  # type: ignore[import-untyped]

from bench.harness.common import RESULTS_DIR, finish, log
from bench.harness.db import (
    add_database_options,
    database_dsn,
    dropped_afterwards,
    server_settings,
)
from bench.harness.scratch import migrated_database, scratch_runtime
from smr.import_command import import_file
from smr.services.imports import Imported

TARGET = 20_000
PEER_TABLES = """
CREATE TABLE peer_customers (phone text PRIMARY KEY, name text, tags jsonb, attributes jsonb);
CREATE TABLE peer_orders (order_id text PRIMARY KEY, phone text, total numeric, at timestamptz,
                          items jsonb)
"""


@dataclass(frozen=True)
class Options:
    pg: str
    database: str
    keep_db: bool
    customers: int
    chunk: int
    jobs: int
    results: Path


def line(i: int) -> dict[str, object]:
    return {
        "phone": f"139{i:08d}",
        "name": f"客户{i}",
        "tags": ["老客"],
        "attributes": {"城市": "上海"},
        "orders": [
            {
                "order_id": f"H{i}",
                "total": 99,
                "occurred_at": "2025-06-01T10:00:00+08:00",
                "items": [{"sku": "FACE-WASH", "quantity": 1}],
            }
        ],
    }


async def smr_import(url: str, file: Path, *, chunk: int, jobs: int) -> tuple[float, Imported]:
    async with scratch_runtime(url) as runtime:
        started = time.perf_counter()
        done = await import_file(runtime.settings, file, chunk=chunk, jobs=jobs)
        return time.perf_counter() - started, done


async def peer_copy(dsn: str, customers: int) -> float:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(PEER_TABLES)
        started = time.perf_counter()
        async with conn.transaction():
            people = []
            orders = []
            for i in range(customers):
                row = line(i)
                people.append(
                    (
                        row["phone"],
                        row["name"],
                        json.dumps(row["tags"]),
                        json.dumps(row["attributes"]),
                    )
                )
                order = row["orders"][0]  # type: ignore[index]
                orders.append(
                    (
                        order["order_id"],
                        row["phone"],
                        order["total"],
                        datetime.fromisoformat(order["occurred_at"]),
                        json.dumps(order["items"]),
                    )
                )
            await conn.copy_records_to_table("peer_customers", records=people)
            await conn.copy_records_to_table("peer_orders", records=orders)
        return time.perf_counter() - started
    finally:
        await conn.close()


def run(options: Options) -> int:
    dsn = database_dsn(options.pg, options.database)
    with (
        dropped_afterwards(options.pg, options.database, keep=options.keep_db),
        TemporaryDirectory() as folder,
    ):
        file = Path(folder) / "customers.jsonl"
        with file.open("w", encoding="utf-8") as out:
            for i in range(options.customers):
                out.write(json.dumps(line(i), ensure_ascii=False) + "\n")
        one_process = None
        if options.jobs > 1:
            _, url = migrated_database(options.pg, options.database)
            one_process, _ = asyncio.run(smr_import(url, file, chunk=options.chunk, jobs=1))
            log(f"one process: {options.customers:,} in {one_process:.1f} s")
        version, url = migrated_database(options.pg, options.database)
        seconds, done = asyncio.run(smr_import(url, file, chunk=options.chunk, jobs=options.jobs))
        log(f"import, {options.jobs} jobs: {options.customers:,} in {seconds:.1f} s: {done}")
        again_seconds, again = asyncio.run(
            smr_import(url, file, chunk=options.chunk, jobs=options.jobs)
        )
        log(f"again: {again_seconds:.1f} s: {again}")
        peer_seconds = asyncio.run(peer_copy(dsn, options.customers))
        settings = asyncio.run(server_settings(dsn))
    rate = options.customers / seconds
    peer_rate = options.customers / peer_seconds
    unchanged = again.created == again.updated == again.orders == 0
    report = {
        "server_version": version,
        "server_settings": settings,
        "customers": options.customers,
        "chunk": options.chunk,
        "cores": os.cpu_count(),
        "jobs": options.jobs,
        "smr": {"seconds": seconds, "customers_per_second": rate},
        "one_process": None
        if one_process is None
        else {
            "seconds": one_process,
            "customers_per_second": options.customers / one_process,
            "scaling": one_process / seconds,
        },
        "peer_copy": {
            "seconds": peer_seconds,
            "customers_per_second": peer_rate,
        },
        "ratio_to_peer": rate / peer_rate,
        "again": {
            "seconds": again_seconds,
            "unchanged": again.unchanged,
            "changed_nothing": unchanged,
        },
        "target": {"customers_per_second": TARGET, "met": rate >= TARGET},
    }
    failures = [] if rate >= TARGET else [f"{rate:,.0f} customers/s, below {TARGET:,}"]
    if not unchanged:
        failures.append("importing again changed something")
    return finish(options.results, report, failures, label="import")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_database_options(parser, database="smr_bench_import")
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=2000)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--results", type=Path, default=RESULTS_DIR / "imports.json")
    args = parser.parse_args()
    options = Options(
        args.pg, args.database, args.keep_db, args.customers, args.chunk, args.jobs, args.results
    )
    return run(options)


if __name__ == "__main__":
    raise SystemExit(main())
