"""The run log as admins read it: events with their evaluations, runs with their trace."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from smr.errors import NotFound
from smr.models import Contact, ContactMerge, Delivery, DeliveryAttempt, Event, Run, TraceEntry
from smr.repositories import contacts as contacts_repo
from smr.repositories import deliveries as deliveries_repo
from smr.repositories import events as events_repo
from smr.repositories import merges as merges_repo
from smr.repositories import runs as runs_repo
from smr.subjects import ContactKind


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def run_json(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "contact_id": run.contact_id,
        "playbook": run.playbook_id,
        "version": run.playbook_version,
        "trigger_event_id": run.trigger_event_id,
        "item": run.item,
        "status": run.status,
        "end_reason": run.end_reason,
        "wake_at": _iso(run.wake_at),
        "started_at": _iso(run.started_at),
        "ended_at": _iso(run.ended_at),
    }


def delivery_json(d: Delivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "run_id": d.run_id,
        "contact_id": d.contact_id,
        "playbook": d.playbook_id,
        "step": d.step,
        "channel": d.channel,
        "category": d.category,
        "text": d.text,
        "template": d.template_code,
        "params": d.params,
        "status": d.status,
        "skip_reason": d.skip_reason,
        "attempts": d.attempts,
        "last_error": d.last_error,
        "due_at": _iso(d.due_at),
        "sent_at": _iso(d.sent_at),
        "created_at": _iso(d.created_at),
    }


def trace_json(t: TraceEntry) -> dict[str, Any]:
    return {"at": _iso(t.at), "step": t.step, "kind": t.kind, **t.detail}


def attempt_json(a: DeliveryAttempt) -> dict[str, Any]:
    return {"at": _iso(a.at), "outcome": a.outcome, "response": a.response, "ms": a.duration_ms}


def merge_json(m: ContactMerge) -> dict[str, Any]:
    return {
        "merged": m.merged_id,
        "into": m.survivor_id,
        "by": m.by,
        "event_id": m.event_id,
        "at": _iso(m.at),
        "moved": m.moved,
    }


def contact_json(c: Contact, identities: dict[str, str]) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "identities": identities,
        "tags": c.tags,
        "attributes": c.attributes,
        "opted_out": c.opted_out,
        "consents": c.consents,
        "purchases": c.purchases,
        "segments": c.segments,
        "stats": {
            "orders": c.orders,
            "total_spent": str(c.total_spent),
            "first_order_at": _iso(c.first_order_at),
            "last_order_at": _iso(c.last_order_at),
            "monthly_spend": c.monthly_spend,
        },
        "last_seen_at": _iso(c.last_seen_at),
        "last_message_at": _iso(c.last_message_at),
        "created_at": _iso(c.created_at),
        "updated_at": _iso(c.updated_at),
        "erased": c.kind == ContactKind.ERASED,
    }


async def event_detail(session: AsyncSession, event_id: str) -> dict[str, Any]:
    event: Event | None = await events_repo.get(session, event_id)
    if event is None:
        raise NotFound(f"No event {event_id}.")
    runs = await runs_repo.of_event(session, event_id)
    return {
        "id": event.id,
        "source": event.source,
        "key": event.key,
        "type": event.type,
        "occurred_at": _iso(event.occurred_at),
        # "received": the sender gave no occurred_at, so it is the time received.
        "occurred_at_source": event.occurred_at_source,
        "received_at": _iso(event.received_at),
        "status": event.status,
        "processed_at": _iso(event.processed_at),
        "contact_id": event.contact_id,
        "data": event.data,
        "evaluations": event.evaluations,
        "runs": [run_json(r) for r in runs],
        "merges": [merge_json(m) for m in await merges_repo.of_event(session, event_id)],
    }


async def run_detail(session: AsyncSession, run_id: str) -> dict[str, Any]:
    run = await runs_repo.get(session, run_id)
    if run is None:
        raise NotFound(f"No run {run_id}.")
    deliveries = await deliveries_repo.of_run(session, run_id)
    attempts: dict[str, list[dict[str, Any]]] = {d.id: [] for d in deliveries}
    for attempt in await deliveries_repo.attempts_of(session, list(attempts)):
        attempts[attempt.delivery_id].append(attempt_json(attempt))
    return {
        **run_json(run),
        "trace": [trace_json(t) for t in await runs_repo.trace_of(session, run_id)],
        "deliveries": [{**delivery_json(d), "attempt_log": attempts[d.id]} for d in deliveries],
    }


async def contact_detail(session: AsyncSession, contact_id: str) -> dict[str, Any]:
    contact = await contacts_repo.get(session, contact_id)
    if contact is None:
        raise NotFound(f"No contact {contact_id}.")
    identities = await contacts_repo.identities_of(session, [contact_id])
    active = await runs_repo.active_of(session, contact_id)
    return {
        **contact_json(contact, identities[contact_id]),
        "active_runs": [run_json(r) for r in active],
        "merged_from": [merge_json(m) for m in await merges_repo.of_contact(session, contact_id)],
    }


async def find_contact(session: AsyncSession, *, kind: str, value: str) -> dict[str, Any]:
    owners = await contacts_repo.owners_of(session, [(kind, value)])
    if (kind, value) not in owners:
        raise NotFound(f"No contact with {kind} {value}.")
    return await contact_detail(session, owners[(kind, value)])
