"""Ingest: events in, contacts resolved, playbooks evaluated, runs and deliveries planned.

Everything one call decides is written in the caller's transaction, so the event, the contact
changes, the runs and the deliveries land together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smr import logs
from smr.db import is_transient, unit_of_work
from smr.ids import new_id
from smr.playbooks import EventView
from smr.repositories import events as events_repo
from smr.repositories import runs as runs_repo
from smr.repositories._sql import write_together
from smr.schemas import EventIn
from smr.services import contacts
from smr.services.catalog import Catalog, EventRules
from smr.services.runs import RunPlanner

# Every round of a race commits at least one of the racing transactions, so few rounds are needed.
RETRIES = 8


class ConcurrentWrite(Exception):
    """One of these events was stored already, or by a concurrent transaction first: running
    again with ``look_up_keys`` reports the event as duplicate."""


@dataclass(frozen=True)
class IngestResult:
    key: str
    status: Literal["accepted", "duplicate"]
    event_id: str
    contact_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.key,
            "status": self.status,
            "event_id": self.event_id,
            "contact_id": self.contact_id,
        }


@dataclass(frozen=True)
class IngestReport:
    results: list[IngestResult]
    deliveries_due: int


async def ingest(
    session: AsyncSession,
    events: Sequence[EventIn],
    *,
    source: str,
    catalog: Catalog,
    now: datetime,
    look_up_keys: bool = True,
) -> IngestReport:
    """Store new events and everything they cause; repeated ids are reported as duplicates.

    Raises ConcurrentWrite when a concurrent request stored one of the same events first, or,
    without ``look_up_keys``, when an event was stored already; the caller then rolls back and
    runs again, looking the keys up. The events, the contacts' changes and the new runs and
    deliveries are written with one statement on PostgreSQL.

    The contacts of the events are locked while their runs are read and planned, so that the
    events of one contact take turns.
    """
    keys = [e.id for e in events]
    known = await events_repo.existing(session, source=source, keys=keys) if look_up_keys else {}
    fresh: dict[str, EventIn] = {}
    for event in events:
        if event.id not in known:
            fresh.setdefault(event.id, event)
    batch = list(fresh.values())
    types = {e.type for e in batch}
    rules = [catalog.rules_for(t) for t in types]
    exiting = catalog.exiting_on(types)
    watched = _watched(rules, now=now)
    states = await contacts.resolve(session, batch, now=now)
    planner = await _planner(session, states, watched, exiting, catalog=catalog, now=now)
    rows = [
        _event_row(e, s, planner, source=source, now=now)
        for e, s in zip(batch, states, strict=True)
    ]
    writes = [
        *contacts.writes(states, now=now),
        events_repo.inserted(rows),
        *planner.plan.inserts(),
    ]
    if not await write_together(session, writes):
        raise ConcurrentWrite
    await planner.plan.write_changes(session)
    accepted: dict[str, IngestResult | None] = {
        r["key"]: IngestResult(r["key"], "accepted", r["id"], r["contact_id"]) for r in rows
    }
    results = [accepted.pop(e.id, None) or _duplicate(e.id, known, rows) for e in events]
    return IngestReport(results=results, deliveries_due=planner.plan.deliveries_due)


def _watched(rules: list[EventRules], *, now: datetime) -> runs_repo.Watched:
    """The runs that the re-entry rules of the playbooks events of these types (``rules``)
    trigger look at."""
    cooldown = max((r.cooldown for r in rules), default=timedelta(0))
    return runs_repo.Watched.within(
        (pid for r in rules for pid in r.watched), cooldown=cooldown, now=now
    )


async def _planner(
    session: AsyncSession,
    states: list[contacts.ContactState],
    watched: runs_repo.Watched,
    exiting: set[str],
    *,
    catalog: Catalog,
    now: datetime,
) -> RunPlanner:
    """A planner that knows the run history (of the ``watched`` runs) and the active runs these
    events may touch (of the playbooks ``exiting`` on their types)."""
    known = {s.id: s for s in states if not s.is_new}  # new contacts have no runs
    history = await runs_repo.history(session, contact_ids=known, watched=watched)
    active = await runs_repo.active_with_triggers(session, contact_ids=known, playbook_ids=exiting)
    await catalog.recall_versions(session, {r.version for runs in active.values() for r in runs})
    return RunPlanner(catalog=catalog, history=history, now=now, active=active)


def _duplicate(key: str, known: dict[str, str], rows: list[dict[str, Any]]) -> IngestResult:
    event_id = known.get(key) or next(str(r["id"]) for r in rows if r["key"] == key)
    return IngestResult(key, "duplicate", event_id)


def _event_row(
    event: EventIn,
    state: contacts.ContactState,
    planner: RunPlanner,
    *,
    source: str,
    now: datetime,
) -> dict[str, Any]:
    order = event.order()
    if order is not None:
        month = event.occurred_at.astimezone(planner.catalog.policies.tz).strftime("%Y-%m")
        state.apply_order(event.type, order, event.occurred_at, month=month)
    if event.type == "contact.unsubscribed":
        state.opt_out(event.data.get("channel"))
    event_id = new_id("ev", now)
    view = EventView(id=event_id, type=event.type, occurred_at=event.occurred_at, data=event.data)
    return {
        "id": event_id,
        "source": source,
        "key": event.id,
        "type": event.type,
        "occurred_at": event.occurred_at,
        "occurred_at_source": event.occurred_at_source,
        "received_at": now,
        "contact_id": state.id,
        "data": event.data,
        "evaluations": planner.on_event(view, state),
    }


async def submit(
    sessions: async_sessionmaker[AsyncSession],
    events: Sequence[EventIn],
    *,
    source: str,
    catalog: Catalog,
    clock: Callable[[], datetime],
) -> IngestReport:
    """Ingest in its own transaction, committed before returning.

    The first run does not look the idempotency keys up: repeats are rare, and the insert of
    the events finds them anyway. A run that meets a repeat (stored before, or concurrently) or
    a deadlock is run again, looking the keys up; repeats are then reported as duplicates.
    """
    look_up_keys = False
    for attempt in range(1, RETRIES + 1):
        try:
            async with unit_of_work(sessions) as session:
                report = await ingest(
                    session,
                    events,
                    source=source,
                    catalog=catalog,
                    now=clock(),
                    look_up_keys=look_up_keys,
                )
            logs.note_events([r.event_id for r in report.results])
            return report
        except ConcurrentWrite as exc:
            look_up_keys = True
            if attempt == RETRIES:
                raise RuntimeError("ingest kept losing races; giving up") from exc
        except DBAPIError as exc:
            if attempt == RETRIES or not is_transient(exc):
                raise
    raise AssertionError("unreachable")
