"""Turning engine decisions into rows: a Plan collects them, ``advance`` runs a playbook from a
position and plans the deliveries, trace and new run state it decides."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from functools import lru_cache
from typing import Any, assert_never

from sqlalchemy.ext.asyncio import AsyncSession

from smr import content
from smr.channels import Address
from smr.ids import new_id
from smr.playbooks import (
    Completed,
    ContactStats,
    ContactView,
    EmitEffect,
    EventView,
    Execution,
    Failed,
    LoadedPlaybook,
    RunView,
    SendEffect,
    SetEffect,
    Stopped,
    TagEffect,
    Waiting,
    execute,
)
from smr.playbooks.policies import STAFF_CHANNEL
from smr.playbooks.steps.transfer import TRANSFER_CHANNEL
from smr.repositories import Record
from smr.repositories import runs as runs_repo
from smr.repositories._bulk import Write
from smr.repositories.rows import EndedRun, NewDelivery, NewRun, RunState, RunUpdate, TraceRow
from smr.services import purchases
from smr.services.addressing import OWNER_ATTRIBUTE
from smr.services.catalog import Catalog
from smr.services.contact_state import ContactState
from smr.statuses import DeliveryStatus, RunStatus, SkipReason

#: Where tag steps on tags mapped to WeCom corp tags go: externalcontact/mark_tag.
TAG_CHANNEL = "wecom_tag"
#: Channels SMR plans on its own, besides those playbooks name.
INTERNAL_CHANNELS = (STAFF_CHANNEL, TAG_CHANNEL, TRANSFER_CHANNEL)


def contact_view(state: ContactState, now: datetime, catalog: Catalog) -> ContactView:
    """The contact as templates see it; month figures are calendar months in the policies'
    timezone."""
    tz = catalog.policies.tz
    last = state.last_order_at
    this_month, last_month = _months(now, tz)
    spend = state.monthly_spend
    stats = ContactStats(
        orders=state.orders,
        total_spent=state.total_spent,
        first_order_at=state.first_order_at,
        last_order_at=last,
        days_since_last_order=(now - last).days if last else None,
        spend_this_month=Decimal(spend.get(this_month, "0")),
        spend_last_month=Decimal(spend.get(last_month, "0")),
        monthly_spend={month: Decimal(amount) for month, amount in spend.items()},
    )
    products, categories = purchases.views(state.purchases, now)
    return ContactView(
        id=state.id,
        name=state.name,
        tags=list(state.tags),
        attributes=dict(state.attributes),
        identities=dict(state.identities),
        stats=stats,
        groups=list(state.groups),
        products=products,
        categories=categories,
        added_at=state.created_at,
        opted_out=list(state.opted_out),
        consented=sorted(state.consents),
        last_seen_at=state.last_seen_at,
        last_message_at=state.last_message_at,
        channels=catalog.reaching(_addresses(state)),
        segments=list(state.segments),
    )


def _addresses(state: ContactState) -> frozenset[str]:
    """What channels may address the contact by: its identity kinds, and its owner staff."""
    owner = (Address.OWNER_STAFF,) if state.attributes.get(OWNER_ATTRIBUTE) else ()
    return frozenset((*state.identities, *owner))


@lru_cache(maxsize=16)  # a batch of events shares one ``now``
def _months(now: datetime, tz: tzinfo) -> tuple[str, str]:
    """This and last calendar month in ``tz``, as "YYYY-MM"."""
    this_month = now.astimezone(tz).replace(day=1)
    return this_month.strftime("%Y-%m"), (this_month - timedelta(days=1)).strftime("%Y-%m")


def apply_effects(state: ContactState, execution: Execution) -> None:
    """Tags and attributes a run set become the contact's, visible to the next event."""
    for effect in execution.effects:
        match effect:
            case TagEffect():
                kept = [t for t in state.tags if t not in effect.remove]
                state.tags = kept + [t for t in dict.fromkeys(effect.add) if t not in kept]
            case SetEffect():
                state.attributes.update(effect.values)
            case SendEffect() | EmitEffect():
                pass  # a delivery, an event: ``advance`` plans them
            case _:
                assert_never(effect)


@dataclass
class Plan:
    """Rows a batch of decisions produced, written with one statement per table."""

    runs: list[NewRun] = field(default_factory=list)
    updated: list[RunUpdate] = field(default_factory=list)
    ended: list[EndedRun] = field(default_factory=list)
    trace: list[TraceRow] = field(default_factory=list)
    deliveries: list[NewDelivery] = field(default_factory=list)
    #: Events steps posted (``emit``), for the caller to append to the log.
    emitted: list[EmitEffect] = field(default_factory=list)

    def note(
        self, run_id: str, at: datetime, kind: str, step: str | None = None, **detail: Any
    ) -> None:
        self.trace.append(TraceRow(run_id, at, step, kind, detail))

    def end(self, run_id: str, *, status: RunStatus, reason: str, at: datetime) -> None:
        self.ended.append(EndedRun(id=run_id, status=status, end_reason=reason, ended_at=at))
        self.note(run_id, at, "end", status=status, reason=reason)

    def mark(self) -> tuple[int, ...]:
        """Where the plan stands now, for ``undo``."""
        return tuple(len(rows) for rows in self._tables())

    def undo(self, mark: tuple[int, ...]) -> None:
        """Drop what was planned since ``mark`` (a run that failed halfway plans nothing)."""
        for rows, length in zip(self._tables(), mark, strict=True):
            del rows[length:]

    def _tables(self) -> tuple[list[Any], ...]:
        return (self.runs, self.updated, self.ended, self.trace, self.deliveries, self.emitted)

    def claim_due(self, *, now: datetime, lease_until: datetime) -> list[Record]:
        """Claim the deliveries planned due by ``now``: they are written ``sending`` under a
        lease until ``lease_until``, for the caller to send once they are committed (a
        dispatcher's claim would move them so). Returns them as a claim does."""
        claimed = []
        for index, delivery in enumerate(self.deliveries):
            if delivery.status == DeliveryStatus.SCHEDULED and delivery.due_at <= now:
                self.deliveries[index] = delivery.claimed(lease_until=lease_until)
                columns = self.deliveries[index].columns()
                claimed.append(Record(**columns, sent_at=None, vendor_ref=None))
        return claimed

    def started_statuses(self) -> dict[str, RunStatus]:
        """The status each run this plan starts is left in (ended, if an exit ended it)."""
        statuses = {r.id: r.state.status for r in self.runs}
        for update in self.updated:
            if update.id in statuses:
                statuses[update.id] = update.state.status
        for end in self.ended:
            if end.id in statuses:
                statuses[end.id] = end.status
        return statuses

    async def write(self, session: AsyncSession) -> None:
        await runs_repo.insert_started(
            session, runs=self.runs, deliveries=self.deliveries, trace=self.trace
        )
        await self.write_changes(session)

    def inserts(self) -> list[Write]:
        """The new runs, deliveries and trace entries, for ``_bulk.write_together``."""
        return runs_repo.started(runs=self.runs, deliveries=self.deliveries, trace=self.trace)

    async def write_changes(self, session: AsyncSession) -> None:
        """End and update runs; after the inserts, so a run started and exited in the same
        batch is ended like any other."""
        await runs_repo.end_runs(session, self.ended)
        await runs_repo.update_runs(session, self.updated)


def advance(
    plan: Plan,
    catalog: Catalog,
    playbook: LoadedPlaybook,
    *,
    run: RunView,
    pc: int,
    event: EventView,
    trigger: EventView,
    contact: ContactState,
    now: datetime,
) -> RunState:
    """Execute ``run`` from ``pc`` as of ``now`` (for a woken run, the time it meant to wake, so
    waits do not drift); plan its deliveries and trace; return the run's new state."""
    tz = catalog.policies.tz
    execution = execute(
        playbook,
        pc=pc,
        contact=contact_view(contact, now, catalog),
        event=event,
        trigger=trigger,
        run=run,
        now=now,
        vars=catalog.vars,
        tz=tz,
    )
    apply_effects(contact, execution)
    run_id = str(run.id)
    for entry in execution.trace:
        plan.note(run_id, now, entry.kind, entry.step_path, **entry.detail)
    for effect in execution.effects:
        planned = (
            tag_mirror(effect, catalog.policies.wecom_tags)
            if isinstance(effect, TagEffect)
            else effect
        )
        if isinstance(planned, EmitEffect):
            plan.emitted.append(planned)
        if isinstance(planned, SendEffect):
            plan.deliveries.append(
                _delivery(planned, playbook=playbook, run_id=run_id, contact_id=contact.id, now=now)
            )
    return _state_after(plan, execution, run_id, now)


def tag_mirror(effect: TagEffect, corp_tags: dict[str, str]) -> SendEffect | None:
    """The mark_tag delivery that mirrors a tag step's mapped tags to WeCom, if any are mapped."""
    add = [(t, corp_tags[t]) for t in effect.add if t in corp_tags]
    remove = [(t, corp_tags[t]) for t in effect.remove if t in corp_tags]
    if not (add or remove):
        return None
    text = " ".join([*(f"+{t}" for t, _ in add), *(f"-{t}" for t, _ in remove)])
    params = {"add_tag": ",".join(i for _, i in add), "remove_tag": ",".join(i for _, i in remove)}
    return SendEffect(effect.step_path, TAG_CHANNEL, "service", text, None, params)


def _delivery(
    effect: SendEffect,
    *,
    playbook: LoadedPlaybook,
    run_id: str,
    contact_id: str,
    now: datetime,
) -> NewDelivery:
    skip: SkipReason | None = None
    if effect.error:
        skip = SkipReason.TEMPLATE_ERROR
    elif playbook.spec.delivery == "dry_run":
        skip = SkipReason.DRY_RUN
    return NewDelivery(
        id=new_id("dl", now),
        run_id=run_id,
        contact_id=contact_id,
        playbook_id=playbook.id,
        playbook_version=playbook.version,
        step=effect.step_path,
        channel=effect.channel,
        category=effect.category,
        text=effect.text,
        template_code=effect.template_code,
        params=dict(effect.params),
        attachments=[content.as_json(a) for a in effect.attachments],
        status=DeliveryStatus.SKIPPED if skip else DeliveryStatus.SCHEDULED,
        skip_reason=skip,
        last_error=effect.error,
        due_at=now,
        created_at=now,
        updated_at=now,
    )


def waiting(pc: int, wake_at: datetime, now: datetime) -> RunState:
    """A run's state while it waits at instruction ``pc`` until ``wake_at``."""
    return RunState(
        status=RunStatus.WAITING,
        pc=pc,
        wake_at=wake_at,
        lease_until=None,
        ended_at=None,
        end_reason=None,
        updated_at=now,
    )


def ended(status: RunStatus, now: datetime, *, reason: str | None = None, pc: int = 0) -> RunState:
    """A run's state once it ended ``now`` with ``status``, at instruction ``pc``."""
    return RunState(
        status=status,
        pc=pc,
        wake_at=None,
        lease_until=None,
        ended_at=now,
        end_reason=reason,
        updated_at=now,
    )


def _state_after(plan: Plan, execution: Execution, run_id: str, now: datetime) -> RunState:
    outcome = execution.outcome
    if isinstance(outcome, Waiting):
        return waiting(outcome.pc, outcome.wake_at, now)
    if isinstance(outcome, Failed):
        state = ended(RunStatus.FAILED, now, reason=outcome.reason)
    elif isinstance(outcome, Stopped):
        state = ended(RunStatus.COMPLETED, now, reason=f"stop at {outcome.step_path}")
    else:
        assert isinstance(outcome, Completed)
        state = ended(RunStatus.COMPLETED, now)
    plan.note(run_id, now, "end", status=state.status, reason=state.end_reason)
    return state
