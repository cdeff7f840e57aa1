"""Phase 1 of ``bench/scale.py``: claim latency with a million future rows in the tables.

A feed inserts due deliveries and due runs at a steady rate; this process calls the claim
paths of the Dispatcher and the Waker every ``claim_interval`` seconds, each in its own
transaction as they do, and times each call including its commit:

* deliveries: ``deliveries.mark_uncertain`` + ``deliveries.claim_due`` (``Dispatcher._claim``
  before its policy lookups);
* runs: ``runs.due`` over every partition (what a processor's ``Waker`` reads first; due runs
  are not claimed: the partition's owner alone advances them).

What was claimed is then finished outside the timing (deliveries ``sent``, runs ``completed``,
the runs in the same transaction), as a worker would, so ``sending`` rows and due runs stay
few. Finally each claim statement,
captured as SMR sent it, is run again under ``EXPLAIN (ANALYZE, BUFFERS)`` with due rows present
(in a transaction rolled back), once as planned for these values and once as a generic plan.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from adapters import build_routes
from bench.scale_common import Options, bench_settings, process_meter, summarise_ms
from bench.scale_due import DueFeed
from smr.config import Settings
from smr.db import create_engine, session_factory, unit_of_work
from smr.eventlog import PARTITIONS
from smr.repositories import deliveries as deliveries_repo
from smr.repositories import runs as runs_repo
from smr.repositories.rows import RunUpdate
from smr.services.plan import ended
from smr.statuses import RunStatus

ALL_PARTITIONS = list(range(PARTITIONS))
WARMUP_CLAIMS = 5  # the first claims open pool connections and prepare statements
PHASE = 1


@dataclass
class ClaimResult:
    batch_size: int
    seconds: float
    due_per_s: int
    claim_interval_s: float
    deliveries_inserted: int
    runs_inserted: int
    delivery_claims: dict[str, float]
    run_claims: dict[str, float]
    rows_per_delivery_claim: float
    rows_per_run_claim: float
    feed_max_behind_s: float
    cpu: dict[str, float | None]
    plans: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class _Timings:
    deliveries: list[float] = field(default_factory=list)
    runs: list[float] = field(default_factory=list)
    delivery_rows: int = 0
    run_rows: int = 0


class _Claimer:
    """The Dispatcher's and the Waker's claims, timed, and the bookkeeping after them."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self._sessions = sessions
        self.lease = timedelta(seconds=settings.lease_seconds)
        self.limit = settings.batch_size
        # As the Dispatcher: the channels whose adapter dedupes a resend.
        routes = build_routes(settings, sessions=sessions, clock=lambda: datetime.now(UTC))
        self.resendable = [
            name for name, adapter in routes.items() if adapter.capabilities.idempotent
        ]

    async def deliveries(self, timings: _Timings | None) -> int:
        started = time.perf_counter()
        now = datetime.now(UTC)
        async with unit_of_work(self._sessions) as session:
            await deliveries_repo.mark_uncertain(session, now=now, resendable=self.resendable)
            rows = await deliveries_repo.claim_due(
                session, now=now, lease=self.lease, limit=self.limit, resendable=self.resendable
            )
        if timings is not None:
            timings.deliveries.append(time.perf_counter() - started)
            timings.delivery_rows += len(rows)
        async with unit_of_work(self._sessions) as session:
            await deliveries_repo.finish(session, [_sent(r, datetime.now(UTC)) for r in rows])
        return len(rows)

    async def runs(self, timings: _Timings | None) -> int:
        started = time.perf_counter()
        now = datetime.now(UTC)
        async with unit_of_work(self._sessions) as session:
            runs = await runs_repo.due(
                session, partitions=ALL_PARTITIONS, now=now, limit=self.limit
            )
            if timings is not None:
                timings.runs.append(time.perf_counter() - started)
                timings.run_rows += len(runs)
            await runs_repo.update_runs(session, [_completed(r.id, r.pc) for r in runs])
        return len(runs)


def _sent(row: Any, now: datetime) -> dict[str, Any]:
    return {
        "id": row.id,
        "status": "sent",
        "skip_reason": None,
        "due_at": row.due_at,
        "sent_at": now,
        "last_error": None,
        "attempts": row.attempts,
        "updated_at": now,
    }


def _completed(run_id: str, pc: int) -> RunUpdate:
    return RunUpdate(id=run_id, state=ended(RunStatus.COMPLETED, datetime.now(UTC), pc=pc))


async def measure_claims(url: str, dsn: str, options: Options) -> ClaimResult:
    settings = bench_settings(url)
    engine = create_engine(url)
    claimer = _Claimer(session_factory(engine), settings)
    feed = DueFeed(
        dsn, per_s=options.due_per_s, seconds=options.seconds, seeded=options.rows, phase=PHASE,
        runs=True,
    )  # fmt: skip
    timings = _Timings()
    try:
        for _ in range(WARMUP_CLAIMS):
            await claimer.deliveries(None)
            await claimer.runs(None)
        cpu = process_meter(os.getpid(), "bench_process")
        cpu.start()
        feed.start()
        started = time.perf_counter()
        try:
            while not feed.finished.is_set():
                tick = time.perf_counter()
                await claimer.deliveries(timings)
                await claimer.runs(timings)
                await asyncio.sleep(max(0.0, options.claim_interval - (time.perf_counter() - tick)))
        finally:
            feed.stop()
        seconds = time.perf_counter() - started
        used = cpu.stop()
        await _drain(claimer)
        plans = await explain_claims(engine, claimer, dsn, options)
    finally:
        await engine.dispose()
    return ClaimResult(
        batch_size=settings.batch_size,
        seconds=round(seconds, 2),
        due_per_s=options.due_per_s,
        claim_interval_s=options.claim_interval,
        deliveries_inserted=feed.deliveries_inserted,
        runs_inserted=feed.runs_inserted,
        delivery_claims=summarise_ms(timings.deliveries),
        run_claims=summarise_ms(timings.runs),
        rows_per_delivery_claim=_ratio(timings.delivery_rows, len(timings.deliveries)),
        rows_per_run_claim=_ratio(timings.run_rows, len(timings.runs)),
        feed_max_behind_s=round(feed.max_behind_s, 3),
        cpu=used,
        plans=plans,
    )


def _ratio(total: int, count: int) -> float:
    return round(total / count, 1) if count else 0.0


async def _drain(claimer: _Claimer) -> None:
    """Claim and finish what the feed left due, so the next phase starts with none."""
    while await claimer.deliveries(None) or await claimer.runs(None):
        pass


# --------------------------------------------------------------------------------------------
# Plans


@contextmanager
def _captured(engine: AsyncEngine) -> Iterator[list[tuple[str, Any]]]:
    """The statements sent meanwhile, with their parameters, as SQLAlchemy hands them to the
    driver."""
    found: list[tuple[str, Any]] = []

    def record(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        found.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield found
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def explain_claims(
    engine: AsyncEngine, claimer: _Claimer, dsn: str, options: Options
) -> dict[str, dict[str, Any]]:
    """Plans of the scheduled-delivery and waiting-run claims with a batch of due rows."""
    feed = DueFeed(
        dsn, per_s=claimer.limit * 10, seconds=0.1, seeded=options.rows, phase=PHASE + 100,
        runs=True,
    )  # fmt: skip
    feed.start()
    feed.join()
    with _captured(engine) as statements:
        async with engine.connect() as conn:
            session = AsyncSession(bind=conn)
            await claimer_statements(session, claimer)
            await conn.rollback()
    # The deliveries' claim is two statements (``FOR UPDATE SKIP LOCKED``), the second the due
    # one (the first takes expired leases); due runs are read without a claim (a processor
    # advances those of the partitions it holds).
    claims = [s for s in statements if "SKIP LOCKED" in s[0]]
    runs = [s for s in statements if "FROM runs" in s[0]]
    wanted = {"deliveries": claims[1], "runs": runs[-1]}
    plans = {}
    for name, (sql, params) in wanted.items():
        plans[name] = {
            "custom": await _explain(engine, sql, params, generic=False),
            "generic": await _explain(engine, sql, params, generic=True),
        }
    async with engine.connect() as conn:
        await _finish_all(conn)
    return plans


async def claimer_statements(session: AsyncSession, claimer: _Claimer) -> None:
    now = datetime.now(UTC)
    lease, limit = claimer.lease, claimer.limit
    await deliveries_repo.claim_due(
        session, now=now, lease=lease, limit=limit, resendable=claimer.resendable
    )
    await runs_repo.due(session, partitions=ALL_PARTITIONS, now=now, limit=limit)


async def _explain(engine: AsyncEngine, sql: str, params: Any, *, generic: bool) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS) of a statement as sent, in a transaction rolled back.
    ``generic``: the plan PostgreSQL caches for a prepared statement whatever its values."""
    args = tuple(params)
    async with engine.connect() as conn:
        driver = conn.exec_driver_sql
        if generic:
            await driver("SET LOCAL plan_cache_mode = force_generic_plan")
            await driver(f"PREPARE bench_claim AS {sql}")
            # EXPLAIN EXECUTE takes no bind parameters: the values go in as literals.
            sql = f"EXECUTE bench_claim({', '.join(map(_literal, args))})"
            args = ()
        result = await driver(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", args)
        raw = result.scalar_one()
        await conn.rollback()
        if generic:
            await driver("DEALLOCATE bench_claim")
            await conn.rollback()
    document = raw if isinstance(raw, list) else json.loads(raw)
    return summarise_plan(document[0])


def _literal(value: Any) -> str:
    if isinstance(value, bool | int | float):
        return str(value)
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'::timestamptz"
    if isinstance(value, list | tuple):
        return f"ARRAY[{', '.join(map(_literal, value))}]"
    return "'" + str(value).replace("'", "''") + "'"


async def _finish_all(conn: Any) -> None:
    """Take the rows the EXPLAIN batch left due out of later phases' way."""
    await conn.exec_driver_sql(
        "UPDATE deliveries SET status = 'cancelled' WHERE status = 'scheduled' AND due_at <= now()"
    )
    await conn.exec_driver_sql(
        "UPDATE runs SET status = 'completed', wake_at = NULL"
        " WHERE status = 'waiting' AND wake_at <= now()"
    )
    await conn.commit()


def summarise_plan(top: dict[str, Any]) -> dict[str, Any]:
    """The top node, every scan (relation, index, rows) and the timings of an EXPLAIN plan."""
    plan = top["Plan"]
    scans = [
        {
            "node": n["Node Type"],
            "relation": n.get("Relation Name") or n.get("CTE Name"),
            "index": n.get("Index Name"),
            "rows": n.get("Actual Rows"),
            "loops": n.get("Actual Loops"),
        }
        for n in _nodes(plan)
        if "Scan" in n["Node Type"]
    ]
    return {
        "top": _label(plan),
        "scans": scans,
        "tree": [_label(n) for n in _nodes(plan)],
        "execution_ms": top.get("Execution Time"),
        "planning_ms": top.get("Planning Time"),
        "shared_buffers": {
            "hit": plan.get("Shared Hit Blocks"),
            "read": plan.get("Shared Read Blocks"),
        },
    }


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


def _label(node: dict[str, Any]) -> str:
    parts = [node["Node Type"]]
    if node.get("Index Name"):
        parts.append(f"using {node['Index Name']}")
    if node.get("Relation Name"):
        parts.append(f"on {node['Relation Name']}")
    return " ".join(parts)


def describe(plan: dict[str, Any]) -> str:
    scans = ", ".join(
        f"{s['node']}{' using ' + s['index'] if s['index'] else ''} on {s['relation']}"
        f" ({s['rows']} rows x {s['loops']})"
        for s in plan["scans"]
    )
    return f"{plan['top']}; scans: {scans}; {plan['execution_ms']:.1f} ms"
