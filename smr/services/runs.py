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
from smr.services.catalog import Catalog
from smr.services.contacts import ContactState
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
            contact_view(contact, self.now, self.catalog.policies.tz),
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
    ) -> str:
        """Start a run of ``playbook`` for ``contact`` now and advance it to its first wait."""
        run = self._begin(playbook, contact.id, trigger, trigger_event_id=trigger_event_id)
        view = RunView(id=run["id"], playbook_id=playbook.id, started_at=self.now)
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
        run.update(state)
        self._track(run, playbook, trigger)
        return str(run["id"])

    def start_pending(
        self, playbook: LoadedPlaybook, *, contact_id: str, trigger: EventView, cron_slot_id: str
    ) -> str:
        """Start a run whose steps a worker takes from here: it is due now, at instruction 0.
        A cron fan-out only decides who gets a run; the workers share out the steps."""
        run = self._begin(playbook, contact_id, trigger, cron_slot_id=cron_slot_id)
        run.update(waiting(0, self.now, self.now))
        self._track(run, playbook, trigger)
        return str(run["id"])

    def _begin(
        self,
        playbook: LoadedPlaybook,
        contact_id: str,
        trigger: EventView,
        *,
        trigger_event_id: str | None = None,
        cron_slot_id: str | None = None,
    ) -> dict[str, Any]:
        """The new run's row (its state columns still to come) and its ``start`` trace entry."""
        run_id = new_id("run", self.now)
        self.plan.note(
            run_id,
            self.now,
            "start",
            event_id=trigger.id,
            event_type=trigger.type,
            version=playbook.version,
        )
        run: dict[str, Any] = {
            "id": run_id,
            "contact_id": contact_id,
            "playbook_id": playbook.id,
            "playbook_version": playbook.version,
            "trigger_event_id": trigger_event_id,
            "cron_slot_id": cron_slot_id,
            "started_at": self.now,
        }
        self.plan.runs.append(run)
        return run

    def _track(self, run: dict[str, Any], playbook: LoadedPlaybook, trigger: EventView) -> None:
        """Re-entry rules and exits see the run from here on, within this batch."""
        found = self.history.setdefault((run["contact_id"], playbook.id), runs_repo.History())
        found.last_started_at = self.now
        if run["status"] in runs_repo.ACTIVE:
            found.active_run_ids.append(run["id"])
            self.active.setdefault(run["contact_id"], []).append(
                runs_repo.ActiveRunRow(run["id"], playbook.id, playbook.version, self.now, trigger)
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
            record["run_id"] = self.start(
                playbook, contact=contact, trigger=event, trigger_event_id=event.id
            )
        return record

    def _exits(self, event: EventView, contact: ContactState) -> None:
        runs = self.active.get(contact.id)
        if not runs:
            return
        view = contact_view(contact, self.now, self.catalog.policies.tz)
        local_now = self.now.astimezone(self.catalog.policies.tz)
        for run in list(runs):
            playbook = self.catalog.for_run(run.playbook_id, run.version)
            if playbook is None or event.type not in playbook.listens_to:
                continue
            active = ActiveRun(run.id, run.playbook_id, run.trigger, run.started_at)
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
