"""Processing a batch of logged events: what each one causes, written with its processed mark.

For the events of a batch (several contacts, in the order they were accepted): resolve each
event's contact (new contacts take the event's partition), evaluate the playbooks (the pure
engine, through ``RunPlanner``), and write the contacts, runs, deliveries, trace and the
events' evaluations, and take the events out of the log, in the caller's transaction: an
event's effects and its "processed" mark commit together, or neither does. Deliveries due at
once are written claimed (``Plan.claim_due``) and pass the policy gate in the same
transaction, as a claim's would, for the caller to send after the commit.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from smr.eventlog import EventStatus, LoggedEvent
from smr.playbooks import EventView
from smr.repositories import event_log, personal_data
from smr.repositories import runs as runs_repo
from smr.repositories._bulk import write_together
from smr.schemas import CONSENTED, ORDER_TYPES, ConsentData, OrderData
from smr.services import contacts, emitting, goals, segments
from smr.services.catalog import Catalog, EventRules
from smr.services.dispatch import Claimed, Dispatcher
from smr.services.funnel import Tally
from smr.services.merging import Merger
from smr.services.runs import RunPlanner
from smr.subjects import IDENTITY_KINDS


@dataclass(frozen=True)
class Processed:
    events: int = 0
    #: The deliveries due at once, written claimed and gated: the caller sends them after the
    #: commit (``Dispatcher.send``).
    gated: list[Claimed] = field(default_factory=list)

    def __add__(self, other: Processed) -> Processed:
        return Processed(self.events + other.events, self.gated + other.gated)


async def process(
    session: AsyncSession,
    batch: Sequence[LoggedEvent],
    *,
    catalog: Catalog,
    now: datetime,
    dispatcher: Dispatcher,
    merge_by: Collection[str] = IDENTITY_KINDS,
) -> Processed:
    """Process ``batch`` (in ``seq`` order) in ``session``'s transaction; deliveries due at
    once are claimed for the ``dispatcher``'s lease and pass its gate. Contacts an event
    links by identities of the kinds ``merge_by`` are merged (``smr.services.merging``)."""
    if not batch:
        return Processed()
    types = {e.type for e in batch}
    rules = [catalog.rules_for(t) for t in types]
    exiting = catalog.exiting_on(types)
    merger = Merger(by=merge_by, catalog=catalog)
    states = await contacts.resolve(session, batch, now=now, merger=merger)
    # The history the re-entry rules look at, as of the earliest event judged (see _apply).
    watched = _watched(rules, now=min(e.received_at for e in batch))
    planner = await _planner(session, states, watched, exiting, catalog=catalog, now=now)
    rows = [_apply(e, s, planner, now=now) for e, s in zip(batch, states, strict=True)]
    filled = await segments.filled(session, catalog)
    moves = segments.reassess(states, catalog, now=now, filled=filled)
    claimed = planner.plan.claim_due(now=now, lease_until=now + dispatcher.lease)
    await write_together(session, [*contacts.writes(states, now=now), *planner.plan.inserts()])
    await segments.write(session, moves, now=now)
    await emitting.post(session, emitting.emitted(planner.plan.emitted, now=now), now=now)
    await planner.plan.write_changes(session)
    await event_log.finish(session, rows, seqs=[e.seq for e in batch])
    erased = [row["id"] for row in rows if row.get("status") == EventStatus.ERASED]
    await personal_data.blank_events(session, erased)
    tally = Tally(catalog.policies.tz)
    await goals.convert(session, batch, states, catalog=catalog, now=now, tally=tally)
    gated = await dispatcher.gate(session, claimed, known=planner.plan.started_statuses())
    for row in rows:
        tally.evaluations(row["evaluations"], at=now)
    tally.plan(planner.plan, now=now)
    await tally.write(session)  # last: see counts.add
    return Processed(events=len(batch), gated=gated)


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
    """A planner that knows the run history (of the ``watched`` runs) and the active runs
    these events may touch (of the playbooks ``exiting`` on their types)."""
    known = {s.id: s for s in states if not s.is_new}  # new contacts have no runs
    history = await runs_repo.history(session, contact_ids=known, watched=watched)
    active = await runs_repo.active_with_triggers(session, contact_ids=known, playbook_ids=exiting)
    await catalog.recall_versions(session, {r.version for runs in active.values() for r in runs})
    return RunPlanner(catalog=catalog, history=history, now=now, active=active)


def _apply(
    event: LoggedEvent, state: contacts.ContactState, planner: RunPlanner, *, now: datetime
) -> dict[str, Any]:
    """The event's effects on its contact and runs; its processed row. The events of an erased
    contact have none (their content is dropped: ``personal_data.blank_events``)."""
    if state.erased:
        return {
            "id": event.id,
            "contact_id": state.id,
            "evaluations": [],
            "processed_at": now,
            "status": EventStatus.ERASED,
        }
    state.seen(event.type, event.occurred_at)
    if event.type in ORDER_TYPES:
        order = OrderData.model_validate(event.data)  # validated when accepted
        policies = planner.catalog.policies
        month = event.occurred_at.astimezone(policies.tz).strftime("%Y-%m")
        cycles = policies.use_cycle_days
        state.apply_order(event.type, order, event.occurred_at, month=month, cycles=cycles)
    if event.type == "contact.unsubscribed":
        state.opt_out(event.data.get("channel"))
    if event.type == CONSENTED:
        consent = ConsentData.model_validate(event.data)  # validated when accepted
        state.consent(consent, at=event.occurred_at, event_id=event.id)
    view = EventView(id=event.id, type=event.type, occurred_at=event.occurred_at, data=event.data)
    # An event is judged as of when it was received, however long it waited in the log:
    # waits, cooldowns and quiet hours count from there, as they would have without a backlog.
    planner.now = event.received_at
    return {
        "id": event.id,
        "contact_id": state.id,
        "evaluations": planner.on_event(view, state),
        "processed_at": now,
    }
