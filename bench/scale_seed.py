"""The bench database of ``bench/scale.py``: created, migrated, and seeded with binary COPY.

Seeded rows get ids in SMR's format (prefix, 12 hex digits of milliseconds, 16 more hex digits)
made from their ordinal, so any phase can name the n-th contact or run without holding a list
of a million ids. Contacts of the audience take the odd ordinals and the others the even ones:
in id order (the order a cron fan-out walks) the two kinds interleave.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from bench.scale_common import PLAYBOOK_ID, PLAYBOOK_VERSION

CHUNK = 50_000
SEED_MS = 0x019A00000000  # a fixed millisecond stamp in November 2025: ids sort by ordinal
FUTURE_MIN = timedelta(hours=1)
FUTURE_SPAN_S = 30 * 24 * 3600  # seeded waits and due times spread over the next 30 days
EMPTY = json.dumps({})

CONTACT_COLUMNS = (
    "id",
    "name",
    "tags",
    "attributes",
    "opted_out",
    "orders",
    "total_spent",
    "first_order_at",
    "last_order_at",
    "created_at",
    "updated_at",
)
IDENTITY_COLUMNS = ("kind", "value", "contact_id")
RUN_COLUMNS = (
    "id",
    "contact_id",
    "playbook_id",
    "playbook_version",
    "status",
    "pc",
    "wake_at",
    "started_at",
    "updated_at",
)
DELIVERY_COLUMNS = (
    "id",
    "run_id",
    "contact_id",
    "playbook_id",
    "step",
    "channel",
    "category",
    "text",
    "params",
    "status",
    "due_at",
    "attempts",
    "created_at",
    "updated_at",
)


def _ordinal_id(prefix: str, ordinal: int) -> str:
    return f"{prefix}_{SEED_MS:012x}{ordinal:016x}"


def contact_id(n: int) -> str:
    """The n-th seeded contact outside any audience."""
    return _ordinal_id("ct", 2 * n)


def member_id(m: int) -> str:
    """The m-th seeded audience contact (tagged 会员)."""
    return _ordinal_id("ct", 2 * m + 1)


def run_id(n: int) -> str:
    """The n-th seeded waiting run (of contact n)."""
    return _ordinal_id("run", n)


# --------------------------------------------------------------------------------------------
# Database


async def vacuum_analyze(dsn: str, tables: Iterable[str]) -> None:
    """VACUUM ANALYZE, as autovacuum would after a bulk load (the server may have it off)."""
    conn = await asyncpg.connect(dsn)
    try:
        for table in tables:
            await conn.execute(f"VACUUM (ANALYZE) {table}")
    finally:
        await conn.close()


# --------------------------------------------------------------------------------------------
# Rows


def _contact(cid: str, name: str, tag: str, now: datetime) -> tuple[Any, ...]:
    return (
        cid,
        name,
        json.dumps([tag], ensure_ascii=False),
        EMPTY,
        "[]",
        1,
        Decimal("299.00"),
        now,
        now,
        now,
        now,
    )


def _future(rng: random.Random, now: datetime) -> datetime:
    return now + FUTURE_MIN + timedelta(seconds=rng.randrange(FUTURE_SPAN_S))


def _base_rows(
    n: int, now: datetime, rng: random.Random
) -> tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]]:
    """Contact n (with a phone), its waiting run and that run's future delivery."""
    cid, rid = contact_id(n), run_id(n)
    name = f"客户{n:07d}"
    contact = _contact(cid, name, "已购", now)
    identity = ("phone", f"138{n:08d}", cid)
    run = (rid, cid, PLAYBOOK_ID, PLAYBOOK_VERSION, "waiting", 1, _future(rng, now), now, now)
    delivery = (
        _ordinal_id("dl", n),
        rid,
        cid,
        PLAYBOOK_ID,
        "steps[0]",
        "mock",
        "marketing",
        f"{name}，您的洗面奶快用完啦，老客专享 9 折：https://example.com",
        EMPTY,
        "scheduled",
        _future(rng, now),
        0,
        now,
        now,
    )
    return contact, identity, run, delivery


def _member_rows(m: int, now: datetime) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    cid = member_id(m)
    return _contact(cid, f"会员{m:07d}", "会员", now), ("phone", f"139{m:08d}", cid)


# --------------------------------------------------------------------------------------------
# COPY


async def _copy_conn(dsn: str) -> Any:
    conn = await asyncpg.connect(dsn)
    # Rows are consistent by construction: skip the per-row foreign-key triggers while loading
    # (needs a superuser; without one the load is just slower).
    with contextlib.suppress(asyncpg.PostgresError):
        await conn.execute("SET session_replication_role = replica")
    return conn


async def _copy_chunks(
    conn: Any,
    chunks: Iterator[dict[str, list[tuple[Any, ...]]]],
    progress: Callable[[int], None],
) -> None:
    done = 0
    for chunk in chunks:
        async with conn.transaction():
            for table, records in chunk.items():
                await conn.copy_records_to_table(table, records=records, columns=_COLUMNS[table])
        done += len(next(iter(chunk.values())))
        progress(done)


def _base_chunks(count: int, now: datetime) -> Iterator[dict[str, list[tuple[Any, ...]]]]:
    rng = random.Random(1)  # spread of due times, not security
    for start in range(0, count, CHUNK):
        chunk: dict[str, list[tuple[Any, ...]]] = {
            "contacts": [],
            "contact_identities": [],
            "runs": [],
            "deliveries": [],
        }
        for n in range(start, min(count, start + CHUNK)):
            for table, row in zip(chunk, _base_rows(n, now, rng), strict=True):
                chunk[table].append(row)
        yield chunk


def _member_chunks(ordinals: Iterable[int], now: datetime) -> Iterator[dict[str, Any]]:
    chunk: dict[str, list[tuple[Any, ...]]] = {"contacts": [], "contact_identities": []}
    for m in ordinals:
        contact, identity = _member_rows(m, now)
        chunk["contacts"].append(contact)
        chunk["contact_identities"].append(identity)
        if len(chunk["contacts"]) >= CHUNK:
            yield chunk
            chunk = {"contacts": [], "contact_identities": []}
    if chunk["contacts"]:
        yield chunk


_COLUMNS = {
    "contacts": CONTACT_COLUMNS,
    "contact_identities": IDENTITY_COLUMNS,
    "runs": RUN_COLUMNS,
    "deliveries": DELIVERY_COLUMNS,
}


async def seed_base(dsn: str, count: int, log: Callable[[str], None]) -> float:
    """``count`` contacts, each with a phone, a run waiting until a future time and a delivery
    scheduled at a future time; returns the seconds it took."""
    started = time.perf_counter()
    now = datetime.now(UTC)
    conn = await _copy_conn(dsn)

    def progress(done: int) -> None:
        if done % (CHUNK * 4) == 0 or done == count:
            log(f"  seeded {done:,} of {count:,} contacts, runs and deliveries")

    try:
        await _copy_chunks(conn, _base_chunks(count, now), progress)
    finally:
        await conn.close()
    return time.perf_counter() - started


async def seed_members(dsn: str, ordinals: Iterable[int]) -> float:
    """Audience contacts (tag 会员, a phone each) with these ordinals; the seconds it took."""
    started = time.perf_counter()
    conn = await _copy_conn(dsn)
    try:
        await _copy_chunks(conn, _member_chunks(ordinals, datetime.now(UTC)), _quiet)
    finally:
        await conn.close()
    return time.perf_counter() - started


def _quiet(_done: int) -> None:
    return None
