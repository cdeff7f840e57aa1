"""What the API answers, as pydantic models: the OpenAPI document's response schemas, and the
shape FastAPI checks each answer against (a handler that strays answers 500 in the tests).

Times are RFC 3339 strings with an offset, as the handlers write them (``isoformat()``); open
objects (event data, contact attributes, trace details) keep every field they carry.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from smr.models import DeliveryStatus, OccurredAtSource, RunStatus

Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
Item = TypeVar("Item")


class Open(BaseModel):
    """An object whose further fields pass through."""

    model_config = ConfigDict(extra="allow")


class FieldProblem(Open):
    """One thing wrong with the request: where (a field path) and what."""

    path: str | None = None
    message: str


class Problem(BaseModel):
    """An error, as RFC 9457 problem details (``application/problem+json``)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] | None = None


class Page(BaseModel, Generic[Item]):
    """One page of a list, newest first; ``next_cursor`` reads the next (null on the last)."""

    items: list[Item]
    next_cursor: str | None


# Ingest ------------------------------------------------------------------------------------


class IngestResult(BaseModel):
    id: str = Field(description="The event id the sender gave.")
    status: Literal["accepted", "duplicate"]
    event_id: str
    contact_id: str | None


class IngestBatchAnswer(BaseModel):
    results: list[IngestResult]


IngestAnswer = IngestResult | IngestBatchAnswer


# The run log ---------------------------------------------------------------------------------


class RunSummary(BaseModel):
    id: str
    contact_id: str
    playbook: str
    version: str
    trigger_event_id: str | None
    status: RunStatus
    end_reason: str | None
    wake_at: Timestamp | None
    started_at: Timestamp | None
    ended_at: Timestamp | None


class TraceEntry(Open):
    at: Timestamp | None
    step: str | None
    kind: str


class Attempt(BaseModel):
    at: Timestamp | None
    outcome: str
    response: str | None
    ms: int


class DeliverySummary(BaseModel):
    id: str
    run_id: str
    contact_id: str
    playbook: str
    step: str
    channel: str
    category: str
    text: str | None
    template: str | None
    params: dict[str, Any]
    status: DeliveryStatus
    skip_reason: str | None
    attempts: int
    last_error: str | None
    due_at: Timestamp | None
    sent_at: Timestamp | None
    created_at: Timestamp | None


class DeliveryDetail(DeliverySummary):
    attempt_log: list[Attempt]


class RunDetail(RunSummary):
    trace: list[TraceEntry]
    deliveries: list[DeliveryDetail]


class RunCancelled(BaseModel):
    id: str
    status: Literal["cancelled"]
    deliveries_cancelled: list[str]


class DeliveryCancelled(BaseModel):
    id: str
    status: Literal["cancelled"]


class EventDetail(BaseModel):
    id: str
    source: str
    key: str
    type: str
    occurred_at: Timestamp | None
    occurred_at_source: OccurredAtSource
    received_at: Timestamp | None
    contact_id: str
    data: dict[str, Any]
    evaluations: list[Any]
    runs: list[RunSummary]


class ContactStats(BaseModel):
    orders: int
    total_spent: str = Field(description="A decimal amount, as text.")
    first_order_at: Timestamp | None
    last_order_at: Timestamp | None
    monthly_spend: dict[str, Any]


class ContactDetail(BaseModel):
    id: str
    name: str | None
    identities: dict[str, str]
    tags: list[Any]
    attributes: dict[str, Any]
    opted_out: list[Any]
    stats: ContactStats
    created_at: Timestamp | None
    updated_at: Timestamp | None
    active_runs: list[RunSummary]


class OutboxMessage(BaseModel):
    delivery_id: str
    channel: str
    contact_id: str
    recipient: dict[str, Any]
    text: str | None
    params: dict[str, Any]
    sent_at: Timestamp


# Playbooks and simulation --------------------------------------------------------------------


class PlaybookProblem(BaseModel):
    file: str
    line: int
    column: int
    path: str
    message: str
    severity: Literal["error", "warning"]


class PlaybookSummary(BaseModel):
    id: str
    name: str
    file: str
    version: str
    enabled: bool
    mode: Literal["single", "restart", "parallel"]
    delivery: Literal["live", "dry_run"]
    trigger: dict[str, Any]
    listens_to: list[str]
    last_good: bool


class PlaybookList(BaseModel):
    playbooks: list[PlaybookSummary]
    errors: list[PlaybookProblem]
    timezone: str
    channels: dict[str, str] = Field(description="Each channel and the adapter it routes to.")


class ReloadAnswer(BaseModel):
    added: list[str]
    changed: list[str]
    removed: list[str]
    kept_last_good: list[str]
    errors: list[PlaybookProblem]
    playbooks: dict[str, str] = Field(description="Each loaded playbook's version.")


class ValidateAnswer(BaseModel):
    valid: bool
    errors: list[PlaybookProblem]


class SimulatedStep(BaseModel):
    at: Timestamp
    kind: str
    playbook: str
    step: str
    channel: str | None
    text: str | None
    status: str | None
    reason: str | None
    detail: str | None


class SimulationNote(Open):
    """A playbook that did not load, or something the simulation could not follow."""

    message: str


class SimulateAnswer(BaseModel):
    timezone: str
    start: Timestamp
    end: Timestamp
    timeline: list[SimulatedStep]
    contact: dict[str, Any] | None
    errors: list[SimulationNote]


# Health and webhooks -------------------------------------------------------------------------


class Alive(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    playbooks: int


class WebhookAnswer(Open):
    """What SMR did with the webhook, and what the vendor expects to read in a 200."""

    status: Literal["accepted", "duplicate", "ignored"]
    detail: str | None = None
    events: list[IngestResult] | None = None


class Acknowledgement(Open):
    """The body the SMS vendor expects in answer to a push."""
