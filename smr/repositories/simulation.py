"""Reads over a whole simulation database: a scratch database that holds one simulated scenario,
never the service's own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from smr.models import (
    Delivery,
    Event,
    Group,
    GroupOwnerStatus,
    GroupStatus,
    GroupTag,
    Run,
    TraceEntry,
)


@dataclass(frozen=True)
class SampleGroup:
    """A customer group a simulation makes up (see ``smr.simulate.groups``)."""

    chat_id: str
    name: str
    owner: str
    tags: tuple[str, ...]


async def events(session: AsyncSession) -> Sequence[Event]:
    return (await session.scalars(select(Event).order_by(Event.received_at, Event.id))).all()


async def deliveries(session: AsyncSession) -> Sequence[Delivery]:
    return (await session.scalars(select(Delivery).order_by(Delivery.id))).all()


async def trace(session: AsyncSession) -> list[tuple[TraceEntry, str]]:
    """Every trace entry with the playbook of its run, in the order they were written."""
    stmt = (
        select(TraceEntry, Run.playbook_id)
        .join(Run, Run.id == TraceEntry.run_id)
        .order_by(TraceEntry.id)
    )
    return [(entry, playbook_id) for entry, playbook_id in await session.execute(stmt)]


async def add_groups(
    session: AsyncSession, groups: Sequence[SampleGroup], *, now: datetime
) -> None:
    """Active customer groups with one member each (the simulation's sample groups)."""
    for sample in groups:
        group = Group(
            chat_id=sample.chat_id,
            name=sample.name,
            owner=sample.owner,
            status=GroupStatus.ACTIVE,
            owner_status=GroupOwnerStatus.EMPLOYED,
            member_count=1,
            synced_at=now,
            updated_at=now,
        )
        session.add(group)
        session.add_all(GroupTag(chat_id=sample.chat_id, tag=tag) for tag in sample.tags)
    await session.flush()
