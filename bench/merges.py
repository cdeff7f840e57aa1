"""What a merge costs on PostgreSQL, next to an event that merges nothing.

```
.venv/bin/python bench/merges.py                        # 5,000 of each
```

Recreates ``smr_bench_merges``, imports ``2 x --pairs`` customers (each person twice: once by
phone, once by WeCom id, each with one order), then processes, with the processor ``smr
serve`` runs, ``--pairs`` events that name nothing new (``chat.message`` by phone) and then
``--pairs`` events that link the two contacts of a person (``contact.edited`` with both
identities): each of those merges two contacts. Reports the time per event of each (accepted
beforehand; processing only). Target (issue 21): a merge costs what one event costs; the
report gives the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness.common import RESULTS_DIR, finish, log
from bench.harness.db import (
    add_database_options,
    database_dsn,
    dropped_afterwards,
    server_settings,
)
from bench.harness.scratch import migrated_database, scratch_runtime
from smr.importing import Line, read
from smr.runtime import Runtime
from smr.schemas import EventIn
from smr.services.imports import import_lines

#: A merge may cost this much more than a plain event and still "cost what one event costs".
TOLERANCE = 2.0


@dataclass(frozen=True)
class Options:
    pg: str
    database: str
    keep_db: bool
    pairs: int
    results: Path


def phone(i: int) -> str:
    return f"139{i:08d}"


def customers(pairs: int) -> list[str]:
    lines = []
    for i in range(pairs):
        order = {"order_id": f"P{i}", "total": 10, "occurred_at": "2025-06-01T10:00:00+08:00"}
        lines.append(json.dumps({"phone": phone(i), "orders": [order]}))
        order = {"order_id": f"W{i}", "total": 20, "occurred_at": "2025-07-01T10:00:00+08:00"}
        lines.append(json.dumps({"wecom_userid": f"wm{i}", "orders": [order]}))
    return lines


def events(kind: str, pairs: int) -> list[EventIn]:
    found = []
    for i in range(pairs):
        contact: dict[str, Any] = {"phone": phone(i)}
        data: dict[str, Any] = {"text": "在吗"}
        if kind == "contact.edited":
            contact["wecom_userid"] = f"wm{i}"
            data = {}
        body = {"id": f"{kind}-{i}", "type": kind, "contact": contact, "data": data}
        found.append(EventIn.model_validate({**body, "occurred_at": datetime.now(UTC)}))
    return found


async def processed(runtime: Runtime, batch: list[EventIn]) -> float:
    for start in range(0, len(batch), 500):
        await runtime.ingest(batch[start : start + 500], source="bench")
    started = time.perf_counter()
    await runtime.process_pending()
    return (time.perf_counter() - started) / len(batch)


async def measure(url: str, pairs: int) -> dict[str, float | int]:
    async with scratch_runtime(url) as runtime:
        lines = [x for x in read(customers(pairs), format="jsonl") if isinstance(x, Line)]
        await import_lines(
            runtime.sessions,
            lines,
            catalog=runtime.catalog,
            now=runtime.clock,
            merge_by=(),  # each person stays two contacts until the events link them
        )
        plain = await processed(runtime, events("chat.message", pairs))
        merging = await processed(runtime, events("contact.edited", pairs))
    return {
        "pairs": pairs,
        "plain_ms_per_event": plain * 1000,
        "merge_ms_per_event": merging * 1000,
        "ratio": merging / plain,
    }


def run(options: Options) -> int:
    with dropped_afterwards(options.pg, options.database, keep=options.keep_db):
        version, url = migrated_database(options.pg, options.database)
        measured = asyncio.run(measure(url, options.pairs))
        log(f"merges: {measured}")
        settings = asyncio.run(server_settings(database_dsn(options.pg, options.database)))
    ok = float(measured["ratio"]) <= TOLERANCE
    report = {
        "server_version": version,
        "server_settings": settings,
        "measured": measured,
        "target": {"ratio_at_most": TOLERANCE, "met": ok},
    }
    failures = [] if ok else [f"a merging event costs {measured['ratio']:.1f}x a plain one"]
    return finish(options.results, report, failures, label="merges")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_database_options(parser, database="smr_bench_merges")
    parser.add_argument("--pairs", type=int, default=5000)
    parser.add_argument("--results", type=Path, default=RESULTS_DIR / "merges.json")
    args = parser.parse_args()
    return run(Options(args.pg, args.database, args.keep_db, args.pairs, args.results))


if __name__ == "__main__":
    raise SystemExit(main())
