"""A person's rights over what SMR holds about them (PIPL, 个人信息保护法, Art. 45 and 47): a copy
of all of it (``export``), and its erasure (``erase``).

An erasure locks the contact, as the processors and wakers do before they change one, so it
takes its turn with them. What they had read of the contact before is not written back:

- a processor's batch that read events the erasure took out of the log finds, when it marks
  them processed, that they are gone, and is tried again without them
  (``smr.repositories.event_log.LogMoved``);
- an event that names the erased contact by id later is processed with no effect
  (status ``erased``, its content dropped);
- a waker skips the due runs of a contact erased since it read them.

A delivery already handed to its channel (``sending``) when the erasure came is not recalled:
the answer counts them (``deliveries_in_flight``).
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from smr.errors import Conflict, NotFound
from smr.models import Contact, Event, GroupMember, MockOutbox, MomentEngagement
from smr.repositories import contacts as contacts_repo
from smr.repositories import merges as merges_repo
from smr.repositories import personal_data
from smr.services.runlog import (
    attempt_json,
    contact_json,
    delivery_json,
    merge_json,
    run_json,
    trace_json,
)
from smr.subjects import ContactKind

log = logging.getLogger(__name__)


async def export(session: AsyncSession, contact_id: str, *, now: datetime) -> dict[str, Any]:
    """All SMR holds about the person ``contact_id`` names.

    Raises ``NotFound`` (no such contact) or ``Conflict`` (a group's or the corp's)."""
    contact = _person(await contacts_repo.get(session, contact_id), contact_id)
    rows = await personal_data.rows_of(session, contact)
    trace: dict[str, list[dict[str, Any]]] = {r.id: [] for r in rows.runs}
    for entry in rows.trace:
        trace[entry.run_id].append(trace_json(entry))
    attempts: dict[str, list[dict[str, Any]]] = {d.id: [] for d in rows.deliveries}
    for attempt in rows.attempts:
        attempts[attempt.delivery_id].append(attempt_json(attempt))
    return {
        "exported_at": now.isoformat(),
        "contact": contact_json(contact, rows.identities),
        "events": [_event_json(e) for e in rows.events],
        "runs": [{**run_json(r), "trace": trace[r.id]} for r in rows.runs],
        "deliveries": [
            {**delivery_json(d), "attachments": d.attachments, "attempt_log": attempts[d.id]}
            for d in rows.deliveries
        ],
        "outbox": [_outbox_json(o) for o in rows.outbox],
        "group_memberships": [_member_json(m) for m in rows.group_memberships],
        "moment_engagements": [_engagement_json(m) for m in rows.moment_engagements],
        "merged_from": [merge_json(m) for m in await merges_repo.of_contact(session, contact.id)],
    }


async def erase(session: AsyncSession, contact_id: str, *, now: datetime) -> dict[str, Any]:
    """Erase the person ``contact_id`` names (see ``personal_data.erase`` for what stays), in
    the caller's transaction. A contact erased before answers as it was, changing nothing.

    Raises ``NotFound`` (no such contact) or ``Conflict`` (a group's or the corp's)."""
    contact = _person(await personal_data.held(session, contact_id), contact_id)
    if _erased(contact):
        return {"id": contact.id, "status": "already_erased", "erased_at": _at(contact)}
    erased = asdict(await personal_data.erase(session, contact, now=now))
    # The id names nobody once the erasure commits: the log line keeps only counts.
    log.info("contact %s erased: %s", contact_id, erased)
    return {"id": contact_id, "status": "erased", "erased_at": now.isoformat(), "erased": erased}


def _person(contact: Contact | None, contact_id: str) -> Contact:
    if contact is None:
        raise NotFound(f"No contact {contact_id}.")
    if contact.kind not in (ContactKind.PERSON, ContactKind.ERASED):
        raise Conflict(f"Contact {contact_id} is a {contact.kind}, not a person.")
    return contact


def _erased(contact: Contact) -> bool:
    return contact.kind == ContactKind.ERASED


def _at(contact: Contact) -> str:
    return contact.updated_at.isoformat()


def _event_json(e: Event) -> dict[str, Any]:
    return {
        "id": e.id,
        "source": e.source,
        "key": e.key,
        "type": e.type,
        "occurred_at": e.occurred_at.isoformat(),
        "received_at": e.received_at.isoformat(),
        "status": e.status,
        "contact": e.contact,
        "data": e.data,
        "evaluations": e.evaluations,
    }


def _outbox_json(o: MockOutbox) -> dict[str, Any]:
    return {
        "delivery_id": o.delivery_id,
        "channel": o.channel,
        "recipient": o.recipient,
        "text": o.text,
        "params": o.params,
        "sent_at": o.sent_at.isoformat(),
    }


def _member_json(m: GroupMember) -> dict[str, Any]:
    return {
        "chat_id": m.chat_id,
        "userid": m.userid,
        "type": m.type,
        "name": m.name,
        "group_nickname": m.group_nickname,
        "join_time": m.join_time.isoformat() if m.join_time else None,
        "invitor": m.invitor,
    }


def _engagement_json(m: MomentEngagement) -> dict[str, Any]:
    return {
        "moment_id": m.moment_id,
        "staff": m.staff,
        "kind": m.kind,
        "at": m.created_at.isoformat(),
    }
