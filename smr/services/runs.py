"""Starting and advancing runs: the engine decides, this module turns decisions into rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from smr.ids import new_id
from smr.playbooks import (
    Completed,
    ContactStats,
    ContactView,
    Evaluation,
    EventView,
    Execution,
    Failed,
    LoadedPlaybook,
    NotifyEffect,
    Outcome,
    RunHistory,
    RunView,
    SendEffect,
    SetEffect,
    Stopped,
    TagEffect,
    Waiting,
    evaluate_event,
    execute,
)
from smr.repositories import deliveries as deliveries_repo
from smr.repositories import runs as runs_repo
from smr.services.catalog import Catalog
from smr.services.contacts import ContactState

#: Where notify_staff steps go: the owner staff's channel.
STAFF_CHANNEL = "staff"


def contact_view(state: ContactState, now: datetime) -> ContactView:
    last = state.last_order_at
    stats = ContactStats(
        orders=state.orders,
        total_spent=state.total_spent,
        first_order_at=state.first_order_at,
        last_order_at=last,
        days_since_last_order=(now - last).days if last else None,
    )
    return ContactView(
        id=state.id,
        name=state.name,
        tags=list(state.tags),
        attributes=dict(state.attributes),
        identities=dict(state.identities),
        stats=stats,
    )


def apply_effects(state: ContactState, execution: Execution) -> None:
    """Tags and attributes a run set become the contact's, visible to the next event."""
    for effect in execution.effects:
        if isinstance(effect, TagEffect):
            kept = [t for t in state.tags if t not in effect.remove]
            state.tags = kept + [t for t in dict.fromkeys(effect.add) if t not in kept]
        elif isinstance(effect, SetEffect):
            state.attributes.update(effect.values)


@dataclass
class Plan:
    """Rows a batch of decisions produced, written with one statement per table."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    ended: list[dict[str, Any]] = field(default_factory=list)
    trace: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)

    def note(
        self, run_id: str, at: datetime, kind: str, step: str | None = None, **detail: Any
    ) -> None:
        self.trace.append(
            {"run_id": run_id, "at": at, "step": step, "kind": kind, "detail": detail}
        )

    async def write(self, session: AsyncSession) -> None:
        await runs_repo.end_runs(session, self.ended)
        await runs_repo.insert_runs(session, self.runs)
        await deliveries_repo.insert_deliveries(session, self.deliveries)
        await runs_repo.insert_trace(session, self.trace)


@dataclass
class RunPlanner:
    """Evaluates events against the catalog and plans the runs they start (pure; no I/O)."""

    catalog: Catalog
    history: dict[tuple[str, str], runs_repo.History]
    now: datetime
    plan: Plan = field(default_factory=Plan)

    def on_event(self, event: EventView, contact: ContactState) -> list[dict[str, Any]]:
        """Evaluate every playbook the event type triggers; returns the evaluations as JSON."""
        playbooks = self.catalog.triggered_by(event.type)
        if not playbooks:
            return []
        evaluations = evaluate_event(
            event,
            contact_view(contact, self.now),
            playbooks,
            history={p.id: self._history(contact.id, p.id) for p in playbooks},
            now=self.now.astimezone(self.catalog.policies.tz),
            vars=self.catalog.vars,
        )
        by_id = {p.id: p for p in playbooks}
        return [self._record(e, by_id[e.playbook_id], event, contact) for e in evaluations]

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
            record["run_id"] = self._start(playbook, event, contact, ends=evaluation.ends_runs)
        return record

    def _start(
        self, playbook: LoadedPlaybook, event: EventView, contact: ContactState, *, ends: list[Any]
    ) -> str:
        run_id = new_id("run", self.now)
        for old in ends:
            self._end(old, reason=f"restarted by event {event.id} (run {run_id})")
        self.plan.note(
            run_id,
            self.now,
            "start",
            event_id=event.id,
            event_type=event.type,
            version=playbook.version,
        )
        row = self._advance(playbook, run_id=run_id, pc=0, event=event, contact=contact)
        self.plan.runs.append(
            {
                **row,
                "id": run_id,
                "contact_id": contact.id,
                "playbook_id": playbook.id,
                "playbook_version": playbook.version,
                "trigger_event_id": event.id,
                "started_at": self.now,
            }
        )
        found = self.history.setdefault((contact.id, playbook.id), runs_repo.History())
        found.last_started_at = self.now
        found.active_run_ids = [run_id] if row["status"] in runs_repo.ACTIVE else []
        return run_id

    def _end(self, run_id: str, *, reason: str) -> None:
        self.plan.ended.append(
            {"id": run_id, "status": "exited", "end_reason": reason, "ended_at": self.now}
        )
        self.plan.note(run_id, self.now, "end", status="exited", reason=reason)

    def _advance(
        self,
        playbook: LoadedPlaybook,
        *,
        run_id: str,
        pc: int,
        event: EventView,
        contact: ContactState,
    ) -> dict[str, Any]:
        """Execute from ``pc``; plan the deliveries and trace; return the run's new state."""
        execution = execute(
            playbook,
            pc=pc,
            contact=contact_view(contact, self.now),
            event=event,
            trigger=event,
            run=RunView(id=run_id, playbook_id=playbook.id, started_at=self.now),
            now=self.now,
            vars=self.catalog.vars,
            tz=self.catalog.policies.tz,
        )
        apply_effects(contact, execution)
        for entry in execution.trace:
            self.plan.note(run_id, self.now, entry.kind, entry.step_path, **entry.detail)
        for effect in execution.effects:
            if isinstance(effect, SendEffect | NotifyEffect):
                self._deliver(effect, playbook=playbook, run_id=run_id, contact_id=contact.id)
        return self._state_after(execution, run_id)

    def _deliver(
        self,
        effect: SendEffect | NotifyEffect,
        *,
        playbook: LoadedPlaybook,
        run_id: str,
        contact_id: str,
    ) -> None:
        send = effect if isinstance(effect, SendEffect) else None
        skip = None
        if send is not None and send.error:
            skip = "template_error"
        elif playbook.spec.delivery == "dry_run":
            skip = "dry_run"
        self.plan.deliveries.append(
            {
                "id": new_id("dl", self.now),
                "run_id": run_id,
                "contact_id": contact_id,
                "playbook_id": playbook.id,
                "step": effect.step_path,
                "channel": send.channel if send else STAFF_CHANNEL,
                "category": send.category if send else "service",
                "text": effect.text,
                "template_code": send.template_code if send else None,
                "params": dict(send.params) if send else {},
                "status": "skipped" if skip else "scheduled",
                "skip_reason": skip,
                "last_error": send.error if send else None,
                "due_at": self.now,
                "created_at": self.now,
                "updated_at": self.now,
            }
        )

    def _state_after(self, execution: Execution, run_id: str) -> dict[str, Any]:
        outcome = execution.outcome
        state: dict[str, Any] = {"pc": 0, "wake_at": None, "ended_at": self.now, "end_reason": None}
        if isinstance(outcome, Waiting):
            state.update(status="waiting", pc=outcome.pc, wake_at=outcome.wake_at, ended_at=None)
        elif isinstance(outcome, Failed):
            state.update(status="failed", end_reason=outcome.reason)
        elif isinstance(outcome, Stopped):
            state.update(status="completed", end_reason=f"stop at {outcome.step_path}")
        else:
            assert isinstance(outcome, Completed)
            state.update(status="completed")
        if state["status"] != "waiting":
            self.plan.note(
                run_id, self.now, "end", status=state["status"], reason=state["end_reason"]
            )
        state["updated_at"] = self.now
        return state
