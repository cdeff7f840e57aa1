"""The outbox: deliveries, their claims and their attempts."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    bindparam,
    func,
    literal_column,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Update

from smr.models import Delivery, DeliveryAttempt, table_of
from smr.repositories import Record
from smr.repositories import _claims as claims
from smr.repositories._bulk import insert_many, update_many
from smr.repositories._sql import any_of, dialect_name, is_one_of, one_of
from smr.repositories.rows import NewAttempt
from smr.statuses import DeliveryStatus

_FINAL_COLUMNS = (
    "status",
    "skip_reason",
    "due_at",
    "sent_at",
    "last_error",
    "attempts",
    "updated_at",
)


async def mark_uncertain(
    session: AsyncSession, *, now: datetime, resendable: Collection[str]
) -> list[Record]:
    """Deliveries a dead worker left in ``sending`` on channels that cannot dedupe a resend:
    they may or may not have reached the customer, so an operator decides (``uncertain``)."""
    stmt = _mark_uncertain(dialect_name(session))
    result = await session.execute(stmt, {"now": now, "resendable": list(resendable)})
    return claims.records(result.mappings())


def _in_flight(table: Table) -> ColumnElement[bool]:
    """``sending``, written into the statement: only a literal lets the planner use the
    partial index of the rows in flight (``ix_deliveries_sending_lease_until``)."""
    return table.c.status == literal_column(f"'{DeliveryStatus.SENDING}'")


@cache
def _mark_uncertain(dialect: str) -> Update:
    table = table_of(Delivery)
    return (
        update(table)
        .where(
            _in_flight(table),
            table.c.lease_until < claims.now(),
            not_(any_of(dialect, table.c.channel, "resendable")),
        )
        .values(status=DeliveryStatus.UNCERTAIN, lease_until=None, updated_at=claims.now())
        .returning(table.c.id, table.c.run_id, table.c.step, table.c.channel, table.c.attempts)
    )


async def claim_due(
    session: AsyncSession,
    *,
    now: datetime,
    lease: timedelta,
    limit: int,
    resendable: Collection[str],
) -> list[Record]:
    """Claim up to ``limit`` deliveries for this worker: ``sending`` ones whose worker died
    (lease expired) on channels that dedupe by our id, then scheduled ones that are due, oldest
    first (ties by id, i.e. first created first). Claimed rows move to ``sending`` with a
    lease; each claim counts as an attempt.
    """
    lost, due = _claim_due(dialect_name(session))
    params = {"now": now, "lease_end": now + lease, "resendable": list(resendable)}
    return await claims.claim_lost_then_due(session, lost, due, params, limit=limit)


@cache
def _claim_due(dialect: str) -> tuple[Update, Update]:
    table = table_of(Delivery)
    lost = and_(
        _in_flight(table),
        table.c.lease_until < claims.now(),
        any_of(dialect, table.c.channel, "resendable"),
    )
    return (
        _claim_statement(table, where=lost, order_by=table.c.lease_until),
        _claim_statement(table, where=_due(table), order_by=_queue(table)),
    )


def _queue(table: Table) -> tuple[ColumnElement[Any], ...]:
    """The order due deliveries are claimed in: by due time, then by id (ids sort by creation
    time), so that deliveries due at the same moment go first come, first served on every
    database (``ix_deliveries_status_due_at_id`` is that order within a status)."""
    return (table.c.due_at, table.c.id)


def _due(table: Table) -> ColumnElement[bool]:
    return and_(table.c.status == DeliveryStatus.SCHEDULED, table.c.due_at <= claims.now())


def _claim_statement(
    table: Table,
    *,
    where: ColumnElement[bool],
    order_by: ColumnElement[Any] | tuple[ColumnElement[Any], ...],
) -> Update:
    """A claimed delivery: ``sending`` under a lease; each claim counts as an attempt."""
    values = {
        "status": DeliveryStatus.SENDING,
        "lease_until": claims.lease_end(),
        "attempts": table.c.attempts + 1,
        "updated_at": claims.now(),
    }
    return claims.claim_statement(table, where=where, order_by=order_by, values=values)


async def sent_marketing(
    session: AsyncSession,
    *,
    contact_ids: Iterable[str],
    since: datetime,
    now: datetime,
    exclude: Collection[str],
) -> dict[str, list[datetime]]:
    """contact id → times of its marketing deliveries sent since ``since``; one another worker
    is sending right now, or one a vendor accepted but has not delivered yet (``awaiting``),
    counts as sent ``now`` (``exclude``: the caller's own claims)."""
    wanted = list(set(contact_ids))
    found: dict[str, list[datetime]] = {cid: [] for cid in wanted}
    if not wanted:
        return found
    params = {"ids": wanted, "since": since, "exclude": list(exclude)}
    result = await session.execute(_sent_marketing(dialect_name(session)), params)
    for row in result.mappings():
        found[row["contact_id"]].append(row["sent_at"] or now)
    return found


@cache
def _sent_marketing(dialect: str) -> Select[Any]:
    table = table_of(Delivery)
    counted = or_(
        and_(
            table.c.status == DeliveryStatus.SENT,
            table.c.sent_at >= bindparam("since", type_=table.c.sent_at.type),
        ),
        and_(
            is_one_of(table.c.status, (DeliveryStatus.SENDING, DeliveryStatus.AWAITING)),
            not_(any_of(dialect, table.c.id, "exclude")),
        ),
    )
    return select(table.c.contact_id, table.c.sent_at).where(
        any_of(dialect, table.c.contact_id, "ids"), table.c.category == "marketing", counted
    )


async def cancel(session: AsyncSession, *, ids: list[str], now: datetime) -> list[str]:
    """Cancel scheduled deliveries; returns the ids that were still scheduled."""
    if not ids:
        return []
    table = table_of(Delivery)
    stmt = (
        update(table)
        .where(table.c.id.in_(ids), table.c.status == DeliveryStatus.SCHEDULED)
        .values(status=DeliveryStatus.CANCELLED, updated_at=now)
        .returning(table.c.id)
    )
    return list((await session.scalars(stmt)).all())


async def scheduled_of_runs(session: AsyncSession, run_ids: list[str]) -> list[str]:
    stmt = select(Delivery.id).where(
        Delivery.run_id.in_(run_ids), Delivery.status == DeliveryStatus.SCHEDULED
    )
    return list((await session.scalars(stmt)).all())


async def finish(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Record the outcome of claimed deliveries: rows of {id, status, skip_reason, due_at, …}."""
    await update_many(
        session,
        table_of(Delivery),
        rows,
        columns=_FINAL_COLUMNS,
        only_if=("status", [DeliveryStatus.SENDING]),
        set_null=("lease_until",),
    )


async def insert_attempts(session: AsyncSession, rows: list[NewAttempt]) -> None:
    await insert_many(session, table_of(DeliveryAttempt), [r.columns() for r in rows])


async def get(session: AsyncSession, delivery_id: str) -> Delivery | None:
    return await session.get(Delivery, delivery_id)


async def of_run(session: AsyncSession, run_id: str) -> Sequence[Delivery]:
    stmt = select(Delivery).where(Delivery.run_id == run_id).order_by(Delivery.id)
    return (await session.scalars(stmt)).all()


async def attempts_of(session: AsyncSession, delivery_ids: list[str]) -> Sequence[DeliveryAttempt]:
    if not delivery_ids:
        return []
    stmt = select(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(delivery_ids))
    return (await session.scalars(stmt.order_by(DeliveryAttempt.id))).all()


async def list_deliveries(
    session: AsyncSession,
    *,
    contact_id: str | None = None,
    run_id: str | None = None,
    status: DeliveryStatus | None = None,
    channel: str | None = None,
    before: str | None = None,
    limit: int,
) -> Sequence[Delivery]:
    stmt = select(Delivery).order_by(Delivery.id.desc()).limit(limit + 1)
    filters = {
        Delivery.contact_id: contact_id,
        Delivery.run_id: run_id,
        Delivery.status: status,
        Delivery.channel: channel,
    }
    stmt = stmt.where(*(col == value for col, value in filters.items() if value is not None))
    if before is not None:
        stmt = stmt.where(Delivery.id < before)
    return (await session.scalars(stmt)).all()


async def posts_since(
    session: AsyncSession,
    contact_ids: Collection[str],
    *,
    since: datetime,
    exclude: Collection[str] = (),
) -> dict[str, int]:
    """Contact id → how many of its deliveries due since ``since`` went to the vendor (sent, or
    awaiting its confirmation), leaving out ``exclude``: a customer group's mass-sends this
    month, against WeCom's monthly quota per group."""
    wanted = list(set(contact_ids))
    if not wanted:
        return {}
    stmt = (
        select(Delivery.contact_id, func.count())
        .where(
            one_of(session, Delivery.contact_id, wanted),
            Delivery.due_at >= since,
            Delivery.status.in_((DeliveryStatus.SENT, DeliveryStatus.AWAITING)),
        )
        .group_by(Delivery.contact_id)
    )
    if exclude:
        stmt = stmt.where(not_(one_of(session, Delivery.id, list(exclude))))
    return {str(contact_id): int(count) for contact_id, count in await session.execute(stmt)}
