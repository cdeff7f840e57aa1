"""What the API answers, as pydantic models: the OpenAPI document's response schemas, and the
shape FastAPI checks each answer against (a handler that strays answers 500 in the tests).

Times are RFC 3339 strings with an offset, as the handlers write them (``isoformat()``); open
objects (event data, contact attributes, trace details) keep every field they carry.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from smr.eventlog import EventStatus
from smr.models import (
    GroupMemberType,
    GroupOwnerStatus,
    GroupStatus,
    OccurredAtSource,
)
from smr.statuses import AttemptOutcome, DeliveryStatus, RunStatus, SkipReason

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
    status: Literal["accepted", "duplicate"] = Field(
        description="accepted: stored now, processed shortly (GET /v1/events/{event_id} shows "
        "pending until then); duplicate: this id was stored before."
    )
    event_id: str


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
    item: str | None = Field(
        default=None, description="The item of the playbook's trigger.each this run is for."
    )
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
    outcome: AttemptOutcome
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
    skip_reason: SkipReason | None
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
    status: Literal[RunStatus.CANCELLED]
    deliveries_cancelled: list[str]


class DeliveryCancelled(BaseModel):
    id: str
    status: Literal[DeliveryStatus.CANCELLED]


class ContactMergeOut(BaseModel):
    """A contact merged into another, the same person (``SMR_MERGE_BY``)."""

    merged: str = Field(description="The merged contact's id: it now answers 308 to `into`.")
    into: str
    by: list[str] = Field(description="The identity kinds (or `id`) that linked them.")
    event_id: str | None
    at: Timestamp
    moved: dict[str, int] = Field(description="Rows moved to the survivor, table by table.")


class EventDetail(BaseModel):
    id: str
    source: str
    key: str
    type: str
    occurred_at: Timestamp | None
    occurred_at_source: OccurredAtSource
    received_at: Timestamp | None
    status: EventStatus = Field(
        description="pending: accepted, waiting to be processed (no contact, evaluations or "
        "runs yet); processed; failed: processing it raised (the error is its evaluation)."
    )
    processed_at: Timestamp | None
    contact_id: str | None = Field(description="Known once the event is processed.")
    data: dict[str, Any]
    evaluations: list[Any]
    runs: list[RunSummary]
    merges: list[ContactMergeOut] = Field(
        default_factory=list, description="The contacts this event showed to be one person."
    )


class ContactStats(BaseModel):
    orders: int
    total_spent: str = Field(description="A decimal amount, as text.")
    first_order_at: Timestamp | None
    last_order_at: Timestamp | None
    monthly_spend: dict[str, Any]


class ContactGroup(BaseModel):
    """A customer group the contact is a member of."""

    chat_id: str
    name: str | None
    owner: str | None
    tags: list[str]


class ContactProfile(BaseModel):
    id: str
    name: str | None
    identities: dict[str, str]
    tags: list[Any]
    attributes: dict[str, Any]
    opted_out: list[Any]
    consents: dict[str, Any] = Field(
        default_factory=dict,
        description="Marketing consent per channel, as given (contact.consented): "
        "at, source, wording, campaign, event_id.",
    )
    purchases: dict[str, Any] = Field(
        default_factory=dict,
        description="What it bought: {skus: {sku: {name, category, orders, quantity, refunded, "
        "first, last}}, categories: {…}}; quantity is net of refunds.",
    )
    segments: list[str] = Field(
        default_factory=list, description="The segments it is in (segments/ in the playbooks)."
    )
    stats: ContactStats
    last_seen_at: Timestamp | None = Field(
        default=None, description="When its latest event of any kind happened."
    )
    last_message_at: Timestamp | None = Field(
        default=None, description="When its latest chat.message happened."
    )
    created_at: Timestamp | None
    updated_at: Timestamp | None
    erased: bool = Field(
        default=False,
        description="Erased at the person's request (DELETE /v1/contacts/{id}): what remains "
        "keeps counts and names nobody.",
    )


class ContactDetail(ContactProfile):
    active_runs: list[RunSummary]
    merged_from: list[ContactMergeOut] = Field(
        default_factory=list, description="The contacts merged into this one, oldest first."
    )
    groups: list[ContactGroup] = Field(description="The customer groups it is a member of.")
    owner_staff: str | None = Field(
        default=None,
        description="The staff member (WeCom userid) who owns the contact: its wecom_owner "
        "attribute, else null.",
    )


class ErasedCounts(BaseModel):
    """Rows an erasure emptied or removed, table by table."""

    identities: int
    events: int = Field(description="Events emptied of their data, contact and key.")
    pending_events: int = Field(description="Events taken out of the log, never processed.")
    pending_marked: int
    runs_stopped: int = Field(description="Waiting runs cancelled.")
    runs: int = Field(description="Runs kept, for counts.")
    trace_entries: int
    deliveries: int = Field(description="Deliveries emptied of their text and parameters.")
    deliveries_cancelled: int = Field(description="Scheduled deliveries cancelled.")
    deliveries_in_flight: int = Field(
        description="Deliveries a channel was sending as the erasure came: not recalled."
    )
    attempts: int
    outbox: int
    group_memberships: int
    moment_engagements: int
    segment_memberships: int = 0
    contact: int


class ContactErased(BaseModel):
    """A person erased (PIPL Art. 47), or found erased before."""

    id: str
    status: Literal["erased", "already_erased"]
    erased_at: Timestamp
    erased: ErasedCounts | None = Field(
        default=None, description="What this request erased (absent when already erased)."
    )


class ContactExport(BaseModel):
    """All SMR holds about a person (PIPL Art. 45), as stored."""

    exported_at: Timestamp
    contact: ContactProfile
    events: list[dict[str, Any]]
    runs: list[dict[str, Any]]
    deliveries: list[dict[str, Any]]
    outbox: list[dict[str, Any]]
    group_memberships: list[dict[str, Any]]
    moment_engagements: list[dict[str, Any]]
    merged_from: list[ContactMergeOut] = Field(
        default_factory=list, description="The contacts merged into this one."
    )


class TransferAccepted(BaseModel):
    """A customer transfer (客户继承) planned: a delivery on the wecom_transfer channel."""

    delivery_id: str
    run_id: str = Field(description="The run the transfer is logged under (playbook api:transfer).")
    contact_id: str
    from_staff: str = Field(description="The owner staff the customer is moved from.")
    to: str
    resigned: bool
    status: Literal[DeliveryStatus.SCHEDULED]


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


class ArchiveResult(BaseModel):
    """What became of one archived message."""

    msgid: str
    status: Literal["accepted", "duplicate", "ignored"]
    id: str | None = Field(default=None, description="The event's id: archive:<msgid>.")
    event_id: str | None = None
    reason: str | None = Field(default=None, description="Why an ignored message was ignored.")


class ArchiveAnswer(BaseModel):
    """The chat-archive push, message by message, and how many of each status."""

    accepted: int
    duplicate: int
    ignored: int
    results: list[ArchiveResult]


# Customer groups -----------------------------------------------------------------------------


class GroupSummary(BaseModel):
    chat_id: str
    name: str | None
    owner: str | None = Field(description="The owner staff's userid.")
    notice: str | None
    status: GroupStatus
    owner_status: GroupOwnerStatus = Field(description="The owner's status in groupchat/list.")
    member_count: int
    member_version: str | None
    tags: list[str] = Field(description="SMR's own tags on the group.")
    created_at: Timestamp | None = Field(description="When the group was created in WeCom.")
    synced_at: Timestamp | None = Field(description="When WeCom last reported the group.")
    updated_at: Timestamp


class GroupMemberOut(BaseModel):
    userid: str = Field(description="A staff userid, or a customer's external userid.")
    type: GroupMemberType
    contact_id: str | None = Field(description="The contact a customer member is, if known.")
    name: str | None
    join_time: Timestamp | None
    join_scene: int | None = Field(description="1 invited, 2 invite link, 3 group QR code.")
    invitor: str | None
    group_nickname: str | None


class GroupDetail(GroupSummary):
    members: list[GroupMemberOut]


class GroupSyncAnswer(BaseModel):
    status: Literal["started", "running"] = Field(
        description="started: a full sync began; running: one was already under way."
    )


# Channel codes -------------------------------------------------------------------------------

from smr.channel_codes.schema import CodeKind  # noqa: E402 - this section's own imports
from smr.models import ChannelCodeStatus  # noqa: E402


class ChannelCodeReport(BaseModel):
    """Contacts added through the code within the range, and what they did after their add
    (until the range's end). Amounts are decimal text, in the orders' currency."""

    since: Timestamp | None
    until: Timestamp | None
    adds: int = Field(description="Distinct contacts whose contact.added carried the state.")
    deletions: int = Field(description="Of those, contacts deleted (contact.deleted) since.")
    buyers: int = Field(description="Of those, contacts with at least one paid order since.")
    orders: int = Field(description="Their order.paid events since their add.")
    refunds: int = Field(description="Their order.refunded events since their add.")
    paid: str
    refunded: str
    revenue: str = Field(description="paid - refunded.")


class ChannelCodeOut(BaseModel):
    state: str = Field(description="The state WeCom puts on the contact.added of this code.")
    name: str
    kind: CodeKind
    declared: bool = Field(description="Whether channel_codes/*.yaml declares it now.")
    file: str | None = Field(description="The file that declares it.")
    status: ChannelCodeStatus
    staff: list[str]
    departments: list[int]
    chat_ids: list[str]
    skip_verify: bool | None
    welcome: bool | None = Field(description="Whether SMR's welcome playbook greets its adds.")
    config_id: str | None = Field(description="WeCom's config_id of the code.")
    qr_code: str | None = Field(description="WeCom's QR picture URL (also at .../qr).")
    last_error: str | None
    attempts: int = Field(description="Failed attempts in a row.")
    retry_at: Timestamp | None
    synced_at: Timestamp | None
    report: ChannelCodeReport


class ChannelCodeList(BaseModel):
    managed: bool = Field(description="Whether the playbooks folder has a channel_codes/ folder.")
    wecom: bool = Field(description="Whether WeCom is configured to make the codes.")
    codes: list[ChannelCodeOut]


# Moments (朋友圈) -------------------------------------------------------------------------------

from smr.models import MomentTaskStatus  # noqa: E402 - this section's own import


class MomentTaskOut(BaseModel):
    id: str
    jobid: str = Field(description="WeCom's add_moment_task jobid.")
    delivery_id: str = Field(description="The delivery that posted it.")
    playbook_id: str | None = Field(description="The playbook that posted it.")
    moment_id: str | None = Field(description="WeCom's moment id, once WeCom has made it.")
    status: MomentTaskStatus
    published_by: list[str] = Field(description="The staff who have published it.")
    likes: int = Field(description="Customers' likes read back (moment.liked events).")
    comments: int = Field(description="Customers' comments read back (moment.commented events).")
    response: str | None = Field(description="WeCom's last word (dropped senders, a refusal).")
    created_at: Timestamp
    updated_at: Timestamp


# --- group welcome templates ---

from smr.models import GroupWelcomeStatus  # noqa: E402 - this section's own import


class GroupWelcomeTemplateOut(BaseModel):
    playbook_id: str
    declared: bool = Field(description="Whether the playbook declares group_welcome now.")
    file: str | None = Field(description="The playbook's file, while it is loaded.")
    notify: bool | None = Field(description="Whether WeCom asks the staff to apply it.")
    status: GroupWelcomeStatus
    template_id: str | None = Field(description="WeCom's template_id, once WeCom made it.")
    last_error: str | None
    attempts: int = Field(description="Failed attempts in a row.")
    retry_at: Timestamp | None
    synced_at: Timestamp | None = Field(description="When WeCom last took the template.")


class GroupWelcomeTemplateList(BaseModel):
    wecom: bool = Field(description="Whether WeCom is configured to keep the templates.")
    templates: list[GroupWelcomeTemplateOut]


# Segments ---------------------------------------------------------------------------------


class SegmentDetail(BaseModel):
    """A segment defined in the playbooks folder's segments/, with its members now."""

    id: str
    description: str | None
    file: str
    version: str
    tags_any: list[str]
    tags_none: list[str]
    condition: str | None = Field(alias="if", description="The condition over contact, now, vars.")
    members: int = Field(description="Customers in the segment now.")
    filled: bool = Field(
        description="Whether this definition's members were filled in whole: until then, "
        "entries and exits are not posted as events (a new definition messages nobody)."
    )

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class SegmentList(BaseModel):
    segments: list[SegmentDetail]
    errors: list[PlaybookProblem] = Field(description="Problems in the segment files.")


class SegmentMemberOut(BaseModel):
    id: str
    name: str | None
    tags: list[Any]
    since: Timestamp = Field(description="Since when the customer is in the segment.")


# Imports ----------------------------------------------------------------------------------

#: The counts of ``ImportAnswer``.
IMPORT_COUNTS = ("lines", "created", "updated", "unchanged", "merged", "orders", "orders_known")


class ImportLineError(BaseModel):
    line: int = Field(description="The line's number in the body (CSV: its header is line 1).")
    path: str
    message: str


class ImportAnswer(BaseModel):
    """What an import did; it never starts a playbook (``triggered`` is always 0)."""

    lines: int
    created: int = Field(description="Customers new to SMR.")
    updated: int
    unchanged: int
    merged: int = Field(description="Contacts merged into another, the same person.")
    orders: int = Field(description="Historical orders counted in stats and purchase history.")
    orders_known: int = Field(description="Orders an earlier import brought already: not again.")
    errors: list[ImportLineError]
    triggered: int = Field(default=0, description="Runs started: always 0.")


class RunFunnel(BaseModel):
    """What happened to a playbook's runs."""

    started: int
    refused: int = Field(description="Evaluations that started no run (condition, cooldown, mode).")
    converted: int = Field(description="Runs that reached the playbook's goal.")
    completed: int
    exited: int = Field(description="Runs an exit_on rule (or a restart) ended.")
    failed: int
    cancelled: int
    refused_by: dict[str, int] = Field(description="Refusals by outcome: condition_false, …")
    exited_by: dict[str, int] = Field(description="Exits by rule: exit_on[0], … (other: restarts).")


class StepFunnel(BaseModel):
    """What happened to the messages of one send step."""

    step: str = Field(description="The step's path, e.g. steps[2].")
    scheduled: int = Field(description="Messages the step made.")
    sent: int
    skipped: int
    failed: int
    awaiting: int = Field(description="Handed to a staff member to confirm (WeCom mass-sends).")
    cancelled: int
    skipped_by: dict[str, int] = Field(description="Skips by reason: opted_out, …")


class VersionFunnel(BaseModel):
    version: str
    runs: RunFunnel
    steps: list[StepFunnel]


class DayFunnel(BaseModel):
    day: str
    started: int
    converted: int
    completed: int
    exited: int
    sent: int
    skipped: int
    failed: int = Field(description="Messages that failed.")


class PlaybookReport(BaseModel):
    """A playbook's funnel over local days (the policies' timezone), from counts kept as runs
    and messages are decided."""

    playbook: str
    since: str
    until: str
    timezone: str
    loaded: bool = Field(description="Whether the playbook is loaded now.")
    runs: RunFunnel
    steps: list[StepFunnel]
    versions: list[VersionFunnel]
    days: list[DayFunnel]
