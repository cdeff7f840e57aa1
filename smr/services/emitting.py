"""Events SMR posts itself, in the transaction of what made them: a playbook's ``emit`` step,
a customer entering or leaving a segment. They are appended to the log with source ``smr``,
routed to their contact's partition like accepted events, and processed in turn."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from smr.eventlog import route_of
from smr.ids import new_id
from smr.playbooks import EmitEffect
from smr.repositories.log_append import Appending, append_in
from smr.schemas import ContactRef

#: The source of the events SMR posts itself.
SOURCE = "smr"


def own_event(
    kind: str, contact: dict[str, str], data: dict[str, Any], *, now: datetime
) -> Appending:
    """An event of type ``kind`` for the contact named by ``contact`` (as an event names
    one: it validated as a ``ContactRef``)."""
    ref = ContactRef.model_validate(contact)
    identities = ref.identities()
    route, partition = route_of(ref.id, identities)
    event_id = new_id("ev", now)
    return Appending(
        id=event_id,
        key=event_id,
        type=kind,
        occurred_at=now,
        occurred_at_source="sent",
        contact=contact,
        data=data,
        route=route,
        partition=partition,
        urgent=False,
        contact_id=ref.id,
        identities=identities,
    )


def emitted(effects: Sequence[EmitEffect], *, now: datetime) -> list[Appending]:
    return [own_event(e.type, e.contact, e.data, now=now) for e in effects]


async def post(session: AsyncSession, events: Sequence[Appending], *, now: datetime) -> None:
    """Append ``events`` to the log in the caller's transaction."""
    if events:
        await append_in(session, events, source=SOURCE, now=now)
