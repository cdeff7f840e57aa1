"""Rows the services hand to the repositories to write: new runs, the state advancing a run
decides, ended runs, trace entries, new deliveries and delivery attempts.

Each field is the column of the same name, except a run's ``state``, whose fields are the
run's state columns. ``columns`` spells out the mapping the bulk writers of ``_bulk`` take:
these rows are built for every event, and ``dataclasses.asdict`` (a deep copy of every value)
would cost more than building them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from smr.statuses import AttemptOutcome, DeliveryStatus, RunStatus, SkipReason


@dataclass(frozen=True, slots=True)
class RunState:
    """The columns of a run that advancing it decides: ``waiting`` at instruction ``pc``
    until ``wake_at``, or ended at ``ended_at`` (for ``end_reason``, if any)."""

    status: RunStatus
    pc: int
    wake_at: datetime | None
    lease_until: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    updated_at: datetime

    def columns(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "pc": self.pc,
            "wake_at": self.wake_at,
            "lease_until": self.lease_until,
            "ended_at": self.ended_at,
            "end_reason": self.end_reason,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class NewRun:
    """A run to insert, in the ``state`` its first steps left it in."""

    id: str
    contact_id: str
    playbook_id: str
    playbook_version: str
    trigger_event_id: str | None
    cron_slot_id: str | None
    started_at: datetime
    state: RunState
    item: str | None = None

    def columns(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "contact_id": self.contact_id,
            "playbook_id": self.playbook_id,
            "playbook_version": self.playbook_version,
            "trigger_event_id": self.trigger_event_id,
            "cron_slot_id": self.cron_slot_id,
            "item": self.item,
            "started_at": self.started_at,
            **self.state.columns(),
        }


@dataclass(frozen=True, slots=True)
class RunUpdate:
    """A stored run's new ``state``."""

    id: str
    state: RunState

    def columns(self) -> dict[str, Any]:
        return {"id": self.id, **self.state.columns()}


@dataclass(frozen=True, slots=True)
class EndedRun:
    """An active or waiting run that ends, whatever step it is at."""

    id: str
    status: RunStatus
    end_reason: str
    ended_at: datetime

    def columns(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "end_reason": self.end_reason,
            "ended_at": self.ended_at,
            "updated_at": self.ended_at,
        }


@dataclass(frozen=True, slots=True)
class TraceRow:
    """An entry of a run's log. ``kind`` is open: the engine's step kinds (``TraceKind``) and
    the planner's and workers' own ("start", "wake", "end", "delivery", "rate_limited")."""

    run_id: str
    at: datetime
    step: str | None
    kind: str
    detail: dict[str, Any]

    def columns(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "at": self.at,
            "step": self.step,
            "kind": self.kind,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """A delivery to insert: ``scheduled`` from ``due_at``, ``skipped`` at once, or, due
    already, ``sending`` under a lease until ``lease_until`` (claimed by the process that
    writes it, which sends it once the row is committed: ``claimed``)."""

    id: str
    run_id: str
    contact_id: str
    playbook_id: str
    playbook_version: str
    step: str
    channel: str
    category: str
    text: str | None
    template_code: str | None
    params: dict[str, Any]
    attachments: list[Any]
    status: DeliveryStatus
    skip_reason: SkipReason | None
    last_error: str | None
    due_at: datetime
    created_at: datetime
    updated_at: datetime
    lease_until: datetime | None = None
    #: Claims so far: a delivery written ``sending`` was claimed once.
    attempts: int = 0

    def claimed(self, *, lease_until: datetime) -> NewDelivery:
        """This delivery, written ``sending`` under a lease: claimed as a claim would."""
        return replace(
            self, status=DeliveryStatus.SENDING, lease_until=lease_until, attempts=self.attempts + 1
        )

    def columns(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "run_id": self.run_id,
            "contact_id": self.contact_id,
            "playbook_id": self.playbook_id,
            "playbook_version": self.playbook_version,
            "step": self.step,
            "channel": self.channel,
            "category": self.category,
            "text": self.text,
            "template_code": self.template_code,
            "params": self.params,
            "attachments": self.attachments,
            "status": self.status,
            "skip_reason": self.skip_reason,
            "last_error": self.last_error,
            "due_at": self.due_at,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "lease_until": self.lease_until,
            "attempts": self.attempts,
        }


@dataclass(frozen=True, slots=True)
class NewAttempt:
    """One call to a channel (or one answer to a check on an awaiting send) and what it came
    to, with the vendor's response."""

    delivery_id: str
    at: datetime
    outcome: AttemptOutcome
    response: str | None
    duration_ms: int

    def columns(self) -> dict[str, Any]:
        return {
            "delivery_id": self.delivery_id,
            "at": self.at,
            "outcome": self.outcome,
            "response": self.response,
            "duration_ms": self.duration_ms,
        }
