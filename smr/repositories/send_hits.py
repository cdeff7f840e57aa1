"""The sends rate-limited channels let through (``send_hits``), which their windows count, and
the slots reserved for the deliveries they hold back."""

from __future__ import annotations

import zlib
from collections.abc import Collection, Sequence
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Delete,
    Integer,
    Select,
    Table,
    and_,
    bindparam,
    delete,
    exists,
    func,
    not_,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from smr.models import Delivery, SendHit, table_of
from smr.repositories._bulk import insert_many
from smr.repositories._sql import any_of, dialect_name
from smr.statuses import DeliveryStatus

#: A delivery in these states may still go, so the slot it reserved stays reserved.
WAITING = (DeliveryStatus.SCHEDULED, DeliveryStatus.SENDING)
#: The first key of SMR's rate-limit advisory locks ("SMR" in ASCII), the channel's hash the second.
_LOCK_SPACE = 0x534D52


async def hold(session: AsyncSession, channels: Collection[str]) -> None:
    """Hold these channels' windows until the transaction ends, so that a claim on another
    worker reads them only once what this one lets through is committed (PostgreSQL: an
    advisory lock per channel, taken in name order; it waits for a claim that holds one).
    SQLite's writers take turns already."""
    if dialect_name(session) != "postgresql":
        return
    for channel in sorted(set(channels)):
        await session.execute(_hold(), {"space": _LOCK_SPACE, "key": _lock_key(channel)})


@cache
def _hold() -> Select[Any]:
    space, key = bindparam("space", type_=Integer), bindparam("key", type_=Integer)
    return select(func.pg_advisory_xact_lock(space, key))


def _lock_key(channel: str) -> int:
    unsigned = zlib.crc32(channel.encode())
    return unsigned - (1 << 32) if unsigned >= 1 << 31 else unsigned


class Hit(NamedTuple):
    """A send made at ``at`` or, with a ``delivery_id``, the slot reserved for that delivery."""

    at: datetime
    delivery_id: str | None = None


async def hits(
    session: AsyncSession, *, buckets: Collection[str], since: datetime
) -> dict[str, list[Hit]]:
    """bucket → its hits and reservations since ``since``."""
    found: dict[str, list[Hit]] = {b: [] for b in buckets}
    if not found:
        return found
    params = {"buckets": list(found), "since": since}
    for bucket, at, delivery_id in await session.execute(_hits(dialect_name(session)), params):
        found[bucket].append(Hit(at, delivery_id))
    return found


@cache
def _hits(dialect: str) -> Select[Any]:
    table = table_of(SendHit)
    since = bindparam("since", type_=table.c.at.type)
    made = and_(table.c.delivery_id.is_(None), table.c.at >= since)
    # A slot stays reserved, however late its tick, while its delivery may still go.
    reserved = and_(table.c.delivery_id.is_not(None), _waiting(table))
    return select(table.c.bucket, table.c.at, table.c.delivery_id).where(
        any_of(dialect, table.c.bucket, "buckets"), or_(made, reserved)
    )


def _waiting(table: Table) -> ColumnElement[bool]:
    """The reservation's delivery is still due or being sent (not cancelled, skipped, sent)."""
    deliveries = table_of(Delivery)
    statuses = or_(*(deliveries.c.status == status for status in WAITING))
    return exists().where(deliveries.c.id == table.c.delivery_id, statuses)


async def record(session: AsyncSession, hits: Sequence[tuple[str, Hit]]) -> None:
    """Insert (bucket, hit) rows: sends made and slots reserved."""
    rows = [{"bucket": b, "at": h.at, "delivery_id": h.delivery_id} for b, h in hits]
    await insert_many(session, table_of(SendHit), rows)


async def release(
    session: AsyncSession, *, buckets: Collection[str], delivery_ids: Collection[str]
) -> None:
    """Delete the slots these deliveries reserved in these buckets (one range of
    ``ix_send_hits_bucket_at`` per bucket)."""
    if buckets and delivery_ids:
        params = {"buckets": list(buckets), "ids": list(delivery_ids)}
        await session.execute(_release(dialect_name(session)), params)


@cache
def _release(dialect: str) -> Delete:
    table = table_of(SendHit)
    return delete(table).where(
        any_of(dialect, table.c.bucket, "buckets"), any_of(dialect, table.c.delivery_id, "ids")
    )


async def sweep(session: AsyncSession, *, before: datetime) -> None:
    """Delete every bucket's sends older than ``before`` and the slots of deliveries that will
    not go any more (cancelled, skipped), those another transaction is not
    deleting right now (PostgreSQL: SKIP LOCKED, so a sweep never waits for, nor deadlocks
    with, another worker's sweep)."""
    await session.execute(_sweep(), {"before": before})


@cache
def _sweep() -> Delete:
    table = table_of(SendHit)
    before = bindparam("before", type_=table.c.at.type)
    made = and_(table.c.delivery_id.is_(None), table.c.at < before)
    abandoned = and_(table.c.delivery_id.is_not(None), not_(_waiting(table)))
    old = select(table.c.id).where(or_(made, abandoned)).with_for_update(skip_locked=True)
    return delete(table).where(table.c.id.in_(old))
