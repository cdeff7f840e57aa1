"""Runs that may reach their playbook's goal, and marking those that did."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from smr.models import CronSlot, Delivery, Event, Run, table_of
from smr.playbooks import EventView
from smr.repositories._bulk import update_many
from smr.repositories._sql import any_of, dialect_name
from smr.repositories.runs import ACTIVE, trigger_view
from smr.statuses import DeliveryStatus


@dataclass(frozen=True)
class Convertible:
    """A run that has not reached its goal yet, with what its goal's ``if`` and window read."""

    id: str
    contact_id: str
    playbook_id: str
    version: str
    started_at: datetime
    trigger: EventView
    item: str | None
    #: When its first message was sent (none yet).
    first_sent_at: datetime | None


async def convertible(
    session: AsyncSession,
    *,
    contact_ids: Iterable[str],
    playbook_ids: Iterable[str],
    ended_since: datetime,
) -> dict[str, list[Convertible]]:
    """contact id → its runs of these playbooks not converted yet, going on or ended since
    ``ended_since`` (a run that ended before could not have sent its first message later),
    oldest first."""
    contacts, playbooks = list(set(contact_ids)), set(playbook_ids)
    found: dict[str, list[Convertible]] = {}
    if not contacts or not playbooks:
        return found
    params = {"contacts": contacts, "ended_since": ended_since}
    for run, event, slot, first_sent in await session.execute(
        _convertible(dialect_name(session)), params
    ):
        if run.playbook_id not in playbooks:
            continue  # picked here, as in ``runs.history``: one statement whatever the ids
        found.setdefault(run.contact_id, []).append(
            Convertible(
                run.id,
                run.contact_id,
                run.playbook_id,
                run.playbook_version,
                run.started_at,
                trigger_view(run, event, slot),
                run.item,
                first_sent,
            )
        )
    return found


@cache
def _convertible(dialect: str) -> Select[Run, Event, CronSlot, datetime | None]:
    first_sent = (
        select(func.min(Delivery.sent_at))
        .where(Delivery.run_id == Run.id, Delivery.status == DeliveryStatus.SENT)
        .scalar_subquery()
    )
    return (
        select(Run, Event, CronSlot, first_sent)
        .outerjoin(Event, Event.id == Run.trigger_event_id)
        .outerjoin(CronSlot, CronSlot.id == Run.cron_slot_id)
        .where(
            any_of(dialect, Run.contact_id, "contacts"),
            Run.converted_at.is_(None),
            or_(Run.status.in_(ACTIVE), Run.ended_at >= bindparam("ended_since")),
        )
        .order_by(Run.id)
    )


async def mark_converted(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Set ``converted_at`` and ``converted_event_id`` of runs (keyed by ``id``)."""
    await update_many(session, table_of(Run), rows, columns=("converted_at", "converted_event_id"))
