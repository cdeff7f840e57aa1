"""Goals and conversion: a run converts when its contact's goal event (``goal: {event, within,
if, from}``) comes within ``within`` of the run's first sent message (or of its start), once.

The processor checks the events of a batch whose types are goals against the runs of their
contacts not converted yet (going on, or ended within the longest window), in the batch's
transaction: the run is marked (``converted_at``, ``converted_event_id``), its run log says
so, and the playbook's funnel counts it (``run.converted``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from smr.eventlog import LoggedEvent
from smr.playbooks import EventView, LoadedPlaybook
from smr.playbooks.context import RunView
from smr.playbooks.engine import goal_reached
from smr.repositories import goals as repo
from smr.repositories import runs as runs_repo
from smr.repositories.goals import Convertible
from smr.repositories.rows import TraceRow
from smr.services.catalog import Catalog
from smr.services.contact_state import ContactState
from smr.services.funnel import Tally
from smr.services.plan import contact_view


async def convert(
    session: AsyncSession,
    batch: Sequence[LoggedEvent],
    states: Sequence[ContactState],
    *,
    catalog: Catalog,
    now: datetime,
    tally: Tally,
) -> None:
    """Mark the runs the batch's events convert, trace and count them (``tally``)."""
    playbook_ids, longest = catalog.with_goal_on({e.type for e in batch})
    if not playbook_ids:
        return
    reaching = [(e, s) for e, s in zip(batch, states, strict=True) if not s.gone]
    found = await repo.convertible(
        session,
        contact_ids={s.id for _, s in reaching},
        playbook_ids=playbook_ids,
        ended_since=min(e.occurred_at for e in batch) - longest,
    )
    converted: dict[str, tuple[Convertible, LoggedEvent]] = {}
    for event, state in reaching:
        for run in found.get(state.id, []):
            if run.id not in converted and _reaches(run, event, state, catalog=catalog, now=now):
                converted[run.id] = (run, event)
    if not converted:
        return
    await repo.mark_converted(
        session,
        [
            {"id": run.id, "converted_at": event.occurred_at, "converted_event_id": event.id}
            for run, event in converted.values()
        ],
    )
    trace = [
        TraceRow(run.id, now, None, "goal", {"event_id": event.id, "event": event.type})
        for run, event in converted.values()
    ]
    await runs_repo.insert_trace(session, trace)
    for run, event in converted.values():
        tally.converted(run.id, run.playbook_id, run.version, at=event.occurred_at)


def _reaches(
    run: Convertible, event: LoggedEvent, state: ContactState, *, catalog: Catalog, now: datetime
) -> bool:
    playbook = catalog.for_run(run.playbook_id, run.version)
    if playbook is None or playbook.goal is None or not _in_window(playbook, run, event):
        return False
    view = EventView(id=event.id, type=event.type, occurred_at=event.occurred_at, data=event.data)
    return goal_reached(
        playbook,
        view,
        contact=contact_view(state, now, catalog),
        run=RunView(run.id, run.playbook_id, run.started_at, run.item),
        trigger=run.trigger,
        now=now.astimezone(catalog.policies.tz),
        vars=catalog.vars,
    )


def _in_window(playbook: LoadedPlaybook, run: Convertible, event: LoggedEvent) -> bool:
    assert playbook.goal is not None
    since = run.first_sent_at if playbook.goal.from_send else run.started_at
    return since is not None and since <= event.occurred_at <= since + playbook.goal.within
