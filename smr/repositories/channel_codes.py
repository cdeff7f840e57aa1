"""Channel codes: the stored codes (what WeCom has), their claims, and the report per code.

A code is acted on by one process at a time: ``claim`` sets a lease with a conditional UPDATE
and a rowcount check (both backends), ``finish`` writes the outcome and drops the lease.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Float,
    and_,
    case,
    cast,
    distinct,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from smr.channel_codes.schema import CodeKind
from smr.models import ChannelCodeRow, ChannelCodeStatus, Event, table_of
from smr.repositories import _claims as claims
from smr.repositories._sql import insert_ignoring_conflicts

_TABLE = table_of(ChannelCodeRow)

ADDED, DELETED, PAID, REFUNDED = "contact.added", "contact.deleted", "order.paid", "order.refunded"


@dataclass(frozen=True)
class StoredCode:
    state: str
    name: str
    kind: CodeKind
    status: ChannelCodeStatus
    config_id: str | None
    wecom_type: int | None
    qr_code: str | None
    spec_hash: str | None
    attempts: int
    last_error: str | None
    retry_at: datetime | None
    synced_at: datetime | None


@dataclass(frozen=True)
class Figures:
    """One code's report: contacts added through it, and what they did after their add."""

    adds: int = 0
    deletions: int = 0
    buyers: int = 0
    orders: int = 0
    refunds: int = 0
    paid: Decimal = Decimal("0.00")
    refunded: Decimal = Decimal("0.00")

    @property
    def revenue(self) -> Decimal:
        return self.paid - self.refunded


async def declare(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert a ``pending`` row for each declared code not stored yet (others are left as is)."""
    if rows:
        await session.execute(insert_ignoring_conflicts(session, table_of(ChannelCodeRow)), rows)


async def stored(session: AsyncSession, states: Sequence[str] | None = None) -> list[StoredCode]:
    """Every stored code (or those of ``states``), by state."""
    stmt = select(ChannelCodeRow).order_by(ChannelCodeRow.state)
    if states is not None:
        stmt = stmt.where(ChannelCodeRow.state.in_(list(states)))
    return [_stored(row) for row in await session.scalars(stmt)]


def _stored(row: ChannelCodeRow) -> StoredCode:
    return StoredCode(
        state=row.state,
        name=row.name,
        kind=CodeKind(row.kind),
        status=ChannelCodeStatus(row.status),
        config_id=row.config_id,
        wecom_type=row.wecom_type,
        qr_code=row.qr_code,
        spec_hash=row.spec_hash,
        attempts=row.attempts,
        last_error=row.last_error,
        retry_at=row.retry_at,
        synced_at=row.synced_at,
    )


async def claim(session: AsyncSession, state: str, *, now: datetime, until: datetime) -> bool:
    """Lease the code until ``until``; False when another process holds a lease on it."""
    return await claims.lease_one(session, _TABLE, state, now=now, until=until)


async def finish(session: AsyncSession, state: str, values: dict[str, Any]) -> None:
    """Write a code's outcome and release its lease."""
    await claims.release_one(session, _TABLE, state, values)


async def report(
    session: AsyncSession,
    states: Sequence[str],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Figures]:
    """The figures of each code in ``states``, in one grouped query.

    A contact counts for a code when a contact.added event carries the code's ``state`` as
    ``data.state`` (its first such add within [since, until) is its add time). Its deletions,
    paid orders and refunds count from its add time until ``until``. Amounts are each order's
    ``data.total``, summed in whole cents so both backends add exactly.
    """
    if not states:
        return {}
    added = _added(states, since=since, until=until)
    later = table_of(Event).alias("later")
    joined = [
        later.c.contact_id == added.c.contact_id,
        later.c.type.in_([DELETED, PAID, REFUNDED]),
        later.c.occurred_at >= added.c.added_at,
    ]
    if until is not None:
        joined.append(later.c.occurred_at < until)
    cents = cast(func.round(cast(later.c.data["total"].as_string(), Float) * 100), BigInteger)

    def when(kind: str, value: Any) -> ColumnElement[Any]:
        return case((later.c.type == kind, value))

    stmt = (
        select(
            added.c.state,
            func.count(distinct(added.c.contact_id)),
            func.count(distinct(when(DELETED, added.c.contact_id))),
            func.count(distinct(when(PAID, added.c.contact_id))),
            func.count(when(PAID, 1)),
            func.count(when(REFUNDED, 1)),
            func.coalesce(func.sum(when(PAID, cents)), 0),
            func.coalesce(func.sum(when(REFUNDED, cents)), 0),
        )
        .select_from(added.outerjoin(later, and_(*joined)))
        .group_by(added.c.state)
    )
    return {row[0]: _figures(row[1:]) for row in await session.execute(stmt)}


def _added(states: Sequence[str], *, since: datetime | None, until: datetime | None) -> Any:
    events = table_of(Event)
    state = events.c.data["state"].as_string()
    where = [events.c.type == ADDED, state.in_(list(states))]
    if since is not None:
        where.append(events.c.occurred_at >= since)
    if until is not None:
        where.append(events.c.occurred_at < until)
    return (
        select(
            state.label("state"),
            events.c.contact_id,
            func.min(events.c.occurred_at).label("added_at"),
        )
        .where(*where)
        .group_by(state, events.c.contact_id)
        .cte("added")
    )


def _figures(row: Sequence[Any]) -> Figures:
    adds, deletions, buyers, orders, refunds, paid, refunded = row
    return Figures(
        adds=int(adds),
        deletions=int(deletions),
        buyers=int(buyers),
        orders=int(orders),
        refunds=int(refunds),
        paid=Decimal(int(paid)).scaleb(-2),
        refunded=Decimal(int(refunded)).scaleb(-2),
    )
