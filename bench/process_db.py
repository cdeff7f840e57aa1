"""What ``bench/process.py`` reads from SMR's tables: progress while a worker processes, and
per-event lags once it is done (all in SQL, so that 300,000 events need not travel)."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from bench.harness.workload import MATCHING_PLAYBOOK


@dataclass(frozen=True)
class Progress:
    """Events still in the log, deliveries of the sending playbook written, and sent."""

    pending: int
    written: int
    sent: int


async def progress(conn: asyncpg.Connection) -> Progress:
    """Deliveries are counted only once the log is empty (before, ``written`` and ``sent``
    are 0): counting a growing table four times a second would load postgres."""
    pending = int(await conn.fetchval("SELECT count(*) FROM event_log"))
    if pending:
        return Progress(pending, 0, 0)
    row = await conn.fetchrow(
        """
        SELECT (SELECT count(*) FROM deliveries WHERE playbook_id = $1) AS written,
               (SELECT count(*) FROM mock_outbox) AS sent
        """,
        MATCHING_PLAYBOOK,
    )
    return Progress(0, int(row["written"]), int(row["sent"]))


@dataclass
class Activity:
    """``pg_stat_activity`` sampled: how many samples, and in how many of them each
    ``state (wait): statement`` of another session on the database was seen."""

    samples: int = 0
    seen: Counter[str] = field(default_factory=Counter)

    def top(self, count: int) -> list[tuple[float, str]]:
        """The ``count`` most seen, with the share of the samples they were seen in."""
        if not self.samples:
            return []
        return [(n / self.samples, what) for what, n in self.seen.most_common(count)]


async def activity(conn: asyncpg.Connection) -> list[str]:
    """What the other sessions on this database are doing now: ``state (wait): statement``
    (the wait event, if any; the statement's first 90 characters, whitespace folded) for each
    session not idle."""
    rows = await conn.fetch(
        """
        SELECT state, wait_event_type, wait_event,
               left(regexp_replace(query, '\\s+', ' ', 'g'), 90) AS query
        FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'
        """
    )
    return [f"{r['state']}{_waiting(r)}: {r['query'].strip()}" for r in rows]


def _waiting(row: asyncpg.Record) -> str:
    # A session idle in transaction always "waits" for its client: not worth saying.
    if row["wait_event"] is None or str(row["state"]).startswith("idle"):
        return ""
    return f" ({row['wait_event_type']}:{row['wait_event']})"


async def sample_activity(dsn: str, into: Activity, *, every: float = 0.1) -> None:
    """Sample ``activity`` into ``into`` every ``every`` seconds until cancelled."""
    conn = await asyncpg.connect(dsn)
    try:
        while True:
            into.seen.update(set(await activity(conn)))
            into.samples += 1
            await asyncio.sleep(every)
    finally:
        await conn.close()


async def grouped(conn: asyncpg.Connection, sql: str) -> dict[str, int]:
    return {str(r[0]): int(r[1]) for r in await conn.fetch(sql)}


async def outcome_counts(conn: asyncpg.Connection) -> dict[str, Any]:
    """Events by status, runs by playbook, deliveries by status: what processing left."""
    return {
        "events_by_status": await grouped(
            conn, "SELECT status, count(*) FROM events GROUP BY 1 ORDER BY 1"
        ),
        "runs_by_playbook": await grouped(
            conn, "SELECT playbook_id, count(*) FROM runs GROUP BY 1 ORDER BY 1"
        ),
        "deliveries_by_status": await grouped(
            conn, "SELECT status, count(*) FROM deliveries GROUP BY 1 ORDER BY 1"
        ),
        "event_log": int(await conn.fetchval("SELECT count(*) FROM event_log")),
        "mock_outbox": int(await conn.fetchval("SELECT count(*) FROM mock_outbox")),
    }


def _stats(seconds: str) -> str:
    """count, p50, p99 and max of the ``seconds`` expression (NULLs ignored), in ms."""
    ms = f"1000 * extract(epoch FROM {seconds})"
    return f"""
        count({seconds}) AS n,
        percentile_disc(0.5) WITHIN GROUP (ORDER BY {ms}) AS p50,
        percentile_disc(0.99) WITHIN GROUP (ORDER BY {ms}) AS p99,
        max({ms}) AS max
    """


def _row(row: asyncpg.Record) -> dict[str, float | int | None]:
    def ms(value: Any) -> float | None:
        return None if value is None else round(float(value), 1)

    return {
        "count": int(row["n"]),
        "p50_ms": ms(row["p50"]),
        "p99_ms": ms(row["p99"]),
        "max_ms": ms(row["max"]),
    }


async def lags(conn: asyncpg.Connection, *, skip_seconds: float) -> dict[str, Any]:
    """Per event received ``skip_seconds`` or more after the first: processing lag
    (``processed_at - received_at``), and for the sending playbook's deliveries accepted to
    sent (the mock outbox row's ``sent_at``, and ``deliveries.sent_at``)."""
    since = "(SELECT min(received_at) FROM events) + make_interval(secs => $1)"
    processing = await conn.fetchrow(
        f"""
        SELECT count(*) AS events, {_stats("processed_at - received_at")}
        FROM events WHERE received_at >= {since}
        """,  # noqa: S608 - fixed SQL
        skip_seconds,
    )
    outbox = await conn.fetchrow(
        f"""
        SELECT count(*) AS deliveries, {_stats("o.sent_at - e.received_at")}
        FROM events e
        JOIN runs r ON r.trigger_event_id = e.id
        JOIN deliveries d ON d.run_id = r.id AND d.playbook_id = $2
        LEFT JOIN mock_outbox o ON o.delivery_id = d.id
        WHERE e.received_at >= {since}
        """,  # noqa: S608 - fixed SQL
        skip_seconds,
        MATCHING_PLAYBOOK,
    )
    delivered = await conn.fetchrow(
        f"""
        SELECT {_stats("d.sent_at - e.received_at")}
        FROM events e
        JOIN runs r ON r.trigger_event_id = e.id
        JOIN deliveries d ON d.run_id = r.id AND d.playbook_id = $2
        WHERE e.received_at >= {since}
        """,  # noqa: S608 - fixed SQL
        skip_seconds,
        MATCHING_PLAYBOOK,
    )
    return {
        "events": int(processing["events"]),
        "processing": _row(processing),
        "deliveries": int(outbox["deliveries"]),
        "to_mock_send": _row(outbox),
        "to_delivery_sent": _row(delivered),
    }
