"""Events against playbooks: which runs an event ends (exit_on, restart) and which it starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from smr.ids import new_id
from smr.playbooks import (
    ActiveRun,
    Evaluation,
    EventView,
    LoadedPlaybook,
    Outcome,
    RunHistory,
    RunView,
    evaluate_event,
    match_exits,
)
from smr.repositories import runs as runs_repo
from smr.repositories.rows import NewRun, RunState
from smr.services.catalog import Catalog
from smr.services.contact_state import ContactState
from smr.services.plan import Plan, advance, contact_view, waiting
from smr.statuses import RunStatus


@dataclass
class RunPlanner:
    """Plans, for a batch of events, the runs they end and start (no I/O: the caller loads
    the history and active runs, and writes ``plan``)."""

    catalog: Catalog
    history: dict[tuple[str, str], runs_repo.History]
    now: datetime
    active: dict[str, list[runs_repo.ActiveRunRow]] = field(default_factory=dict)
    plan: Plan = field(default_factory=Plan)

    def on_event(self, event: EventView, contact: ContactState) -> list[dict[str, Any]]:
        """End the runs the event exits, then evaluate every playbook its type triggers;
        returns the evaluations as JSON for the event's record."""
        self._exits(event, contact)
        playbooks = self.catalog.triggered_by(event.type)
        if not playbooks:
            return []
        evaluations = evaluate_event(
            event,
            contact_view(contact, self.now, self.catalog),
            playbooks,
            history={p.id: self._history(contact.id, p.id) for p in playbooks},
            now=self.now.astimezone(self.catalog.policies.tz),
            vars=self.catalog.vars,
        )
        by_id = {p.id: p for p in playbooks}
        return [self._record(e, by_id[e.playbook_id], event, contact) for e in evaluations]

    def start(
        self,
        playbook: LoadedPlaybook,
        *,
        contact: ContactState,
        trigger: EventView,
        trigger_event_id: str | None,
        item: str | None = None,
    ) -> str:
        """Start a run of ``playbook`` for ``contact`` now (for ``item`` of its
        ``trigger.each``) and advance it to its first wait."""
        run_id = self._begin(playbook, trigger)
        view = RunView(id=run_id, playbook_id=playbook.id, started_at=self.now, item=item)
        state = advance(
            self.plan,
            self.catalog,
            playbook,
            run=view,
            pc=0,
            event=trigger,
            trigger=trigger,
            contact=contact,
            now=self.now,
        )
        self._add(
            run_id,
            playbook,
            contact_id=contact.id,
            trigger=trigger,
            state=state,
            trigger_event_id=trigger_event_id,
            item=item,
        )
        return run_id

    def start_pending(
        self, playbook: LoadedPlaybook, *, contact_id: str, trigger: EventView, cron_slot_id: str
    ) -> str:
        """Start a run whose steps a worker takes from here: it is due now, at instruction 0.
        A cron fan-out only decides who gets a run; the workers share out the steps."""
        run_id = self._begin(playbook, trigger)
        state = waiting(0, self.now, self.now)
        self._add(
            run_id,
            playbook,
            contact_id=contact_id,
            trigger=trigger,
            state=state,
            cron_slot_id=cron_slot_id,
        )
        return run_id

    def _begin(self, playbook: LoadedPlaybook, trigger: EventView) -> str:
        """A new run's id, after its ``start`` trace entry."""
        run_id = new_id("run", self.now)
        self.plan.note(
            run_id,
            self.now,
            "start",
            event_id=trigger.id,
            event_type=trigger.type,
            version=playbook.version,
        )
        return run_id

    def _add(
        self,
        run_id: str,
        playbook: LoadedPlaybook,
        *,
        contact_id: str,
        trigger: EventView,
        state: RunState,
        trigger_event_id: str | None = None,
        cron_slot_id: str | None = None,
        item: str | None = None,
    ) -> None:
        """Plan the new run; re-entry rules and exits see it from here on, within this batch."""
        self.plan.runs.append(
            NewRun(
                id=run_id,
                contact_id=contact_id,
                playbook_id=playbook.id,
                playbook_version=playbook.version,
                trigger_event_id=trigger_event_id,
                cron_slot_id=cron_slot_id,
                started_at=self.now,
                state=state,
                item=item,
            )
        )
        found = self.history.setdefault((contact_id, playbook.id), runs_repo.History())
        found.last_started_at = self.now
        if state.status in runs_repo.ACTIVE:
            found.active_run_ids.append(run_id)
            self.active.setdefault(contact_id, []).append(
                runs_repo.ActiveRunRow(
                    run_id, playbook.id, playbook.version, self.now, trigger, item
                )
            )

    def _history(self, contact_id: str, playbook_id: str) -> RunHistory:
        found = self.history.get((contact_id, playbook_id))
        if found is None:
            return RunHistory()
        return RunHistory(list(found.active_run_ids), found.last_started_at)

    def _record(
        self,
        evaluation: Evaluation,
        playbook: LoadedPlaybook,
        event: EventView,
        contact: ContactState,
    ) -> dict[str, Any]:
        record: dict[str, Any] = {
            "playbook": playbook.id,
            "version": playbook.version,
            "outcome": str(evaluation.outcome),
            "detail": evaluation.detail,
        }
        if evaluation.outcome == Outcome.STARTED:
            for old in evaluation.ends_runs:
                self._end(contact.id, str(old), reason=f"restarted by event {event.id}")
            if evaluation.items:
                record["items"] = evaluation.items
                record["run_ids"] = [
                    self.start(
                        playbook, contact=contact, trigger=event, trigger_event_id=event.id, item=i
                    )
                    for i in evaluation.items
                ]
            else:
                record["run_id"] = self.start(
                    playbook, contact=contact, trigger=event, trigger_event_id=event.id
                )
        return record

    def _exits(self, event: EventView, contact: ContactState) -> None:
        runs = self.active.get(contact.id)
        if not runs:
            return
        view = contact_view(contact, self.now, self.catalog)
        local_now = self.now.astimezone(self.catalog.policies.tz)
        for run in list(runs):
            playbook = self.catalog.for_run(run.playbook_id, run.version)
            if playbook is None or event.type not in playbook.listens_to:
                continue
            active = ActiveRun(run.id, run.playbook_id, run.trigger, run.started_at, run.item)
            for match in match_exits(
                event,
                view,
                [active],
                {run.playbook_id: playbook},
                now=local_now,
                vars=self.catalog.vars,
            ):
                self._end(contact.id, run.id, reason=f"{match.detail} (event {event.id})")

    def _end(self, contact_id: str, run_id: str, *, reason: str) -> None:
        self.plan.end(run_id, status=RunStatus.EXITED, reason=reason, at=self.now)
        for found in self.history.values():
            if run_id in found.active_run_ids:
                found.active_run_ids.remove(run_id)
        runs = self.active.get(contact_id, [])
        self.active[contact_id] = [r for r in runs if r.id != run_id]
