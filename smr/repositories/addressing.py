"""What a channel may need to address a delivery, beyond the contact's identities: the run's
trigger event (when and what) and the contact's attributes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from smr.models import Contact, Event, Run
from smr.repositories._sql import one_of


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
    stmt = (
        select(Run.id, Event.occurred_at, Event.data, Contact.attributes)
        .select_from(Run)
        .join(Contact, Contact.id == Run.contact_id)
        .outerjoin(Event, Event.id == Run.trigger_event_id)
        .where(one_of(session, Run.id, wanted))
    )
    return {
        run_id: RunContext(occurred_at, data or {}, attributes or {})
        for run_id, occurred_at, data, attributes in await session.execute(stmt)
    }
