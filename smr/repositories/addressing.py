"""What a channel may need to address a delivery, beyond the contact's identities: the run's
trigger event (when and what) and the contact's attributes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from smr.models import Contact, Event, Run, table_of
from smr.repositories._sql import any_of, dialect_name


@dataclass(frozen=True)
class RunContext:
    trigger_at: datetime | None = None
    trigger_data: Mapping[str, Any] = field(default_factory=dict)
    attributes: Mapping[str, Any] = field(default_factory=dict)


async def run_contexts(session: AsyncSession, run_ids: Iterable[str]) -> dict[str, RunContext]:
    """run id → its trigger event's time and data (none for a scheduled run) and its contact's
    attributes. One statement."""
    wanted = list(set(run_ids))
    if not wanted:
        return {}
    stmt = _run_contexts(dialect_name(session))
    rows = (await session.execute(stmt, {"ids": wanted})).mappings()
    return {
        row["id"]: RunContext(row["occurred_at"], row["data"] or {}, row["attributes"] or {})
        for row in rows
    }


@cache
def _run_contexts(dialect: str) -> Select[Any]:
    runs, events, contacts = table_of(Run), table_of(Event), table_of(Contact)
    return (
        select(runs.c.id, events.c.occurred_at, events.c.data, contacts.c.attributes)
        .select_from(runs)
        .join(contacts, contacts.c.id == runs.c.contact_id)
        .outerjoin(events, events.c.id == runs.c.trigger_event_id)
        .where(any_of(dialect, runs.c.id, "ids"))
    )
