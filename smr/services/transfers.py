"""Customer transfers (客户继承) requested through the API, and WeCom's transfer_fail callback.

A transfer is a delivery on the ``wecom_transfer`` channel, like the one a playbook's
``transfer`` step plans, so it is claimed, retried, logged and visible in GET /v1/deliveries.
Deliveries belong to a run (``deliveries.run_id`` is a foreign key and the run log is keyed by
run), so a transfer requested through the API gets a run of its own: playbook id
``api:transfer`` (a name no playbook file can take), already ``completed`` when written, with
the request in its trace. That keeps one delivery machinery and one run log, with no schema
change; the alternative, calling WeCom from the request and recording an attempt by hand, would
bypass retries, the lease and the awaiting checks.

A transfer_fail callback (the customer refused, or the takeover staff is full) fails the
contact's awaiting transfer to that takeover staff with WeCom's reason; the callback's
``contact.transfer_failed`` event is ingested beside it, for playbooks to act on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smr.db import unit_of_work
from smr.errors import Conflict, NotFound
from smr.ids import new_id
from smr.playbooks.steps.transfer import TRANSFER_CHANNEL, transfer_effect
from smr.repositories import Record
from smr.repositories import awaiting as awaiting_repo
from smr.repositories import contacts as contacts_repo
from smr.repositories import deliveries as deliveries_repo
from smr.repositories import runs as runs_repo
from smr.repositories import transfers as repo
from smr.repositories.rows import NewAttempt, NewDelivery, NewRun, TraceRow
from smr.services.plan import ended
from smr.statuses import AttemptOutcome, DeliveryStatus, RunStatus

#: The playbook id of the runs transfers requested through the API belong to.
API_PLAYBOOK = "api:transfer"
API_VERSION = "api"
#: transfer_fail FailReason → what it means.
FAIL_REASONS = {
    "customer_refused": "客户拒绝: the customer refused the transfer",
    "customer_limit_exceed": "接替成员的客户数达到上限: the takeover staff has too many customers",
}


@dataclass(frozen=True)
class TransferFailure:
    """A transfer_fail callback: ``takeover`` could not take ``customer`` over."""

    customer: str
    takeover: str
    reason: str


@dataclass(frozen=True)
class TransferRequested:
    delivery_id: str
    run_id: str
    owner_staff: str


def owner_of(attributes: Mapping[str, Any]) -> str | None:
    """The contact's owner staff: its ``wecom_owner`` attribute, when it is a userid."""
    owner = attributes.get(repo.OWNER_ATTRIBUTE)
    return owner if isinstance(owner, str) and owner else None


async def request(
    session: AsyncSession,
    contact_id: str,
    *,
    to: str,
    message: str | None,
    resigned: bool,
    now: datetime,
) -> TransferRequested:
    """Plan the transfer of a contact to ``to``. Raises NotFound for an unknown contact,
    Conflict when WeCom could not transfer it (no external userid, no owner staff, or ``to``
    owns it already)."""
    contact = await contacts_repo.get(session, contact_id)
    if contact is None:
        raise NotFound(f"No contact {contact_id}.")
    identities = (await contacts_repo.identities_of(session, [contact_id])).get(contact_id, {})
    owner = owner_of(contact.attributes)
    if "wecom_userid" not in identities:
        raise Conflict("The contact has no wecom_userid: WeCom knows no customer to transfer.")
    if owner is None:
        raise Conflict("The contact has no owner staff (attribute wecom_owner) to transfer from.")
    if owner == to:
        raise Conflict(f"{to} is the contact's owner staff already.")
    run_id, delivery_id = new_id("run", now), new_id("dl", now)
    effect = transfer_effect("api.transfer", to=to, message=message, resigned=resigned)
    delivery = NewDelivery(
        id=delivery_id,
        run_id=run_id,
        contact_id=contact_id,
        playbook_id=API_PLAYBOOK,
        playbook_version=API_VERSION,
        step=effect.step_path,
        channel=effect.channel,
        category=effect.category,
        text=effect.text,
        template_code=None,
        params=dict(effect.params),
        attachments=[],
        status=DeliveryStatus.SCHEDULED,
        skip_reason=None,
        last_error=None,
        due_at=now,
        created_at=now,
        updated_at=now,
    )
    await runs_repo.insert_started(
        session,
        runs=[_run(run_id, contact_id, now)],
        deliveries=[delivery],
        trace=_trace(run_id, effect.step_path, {**effect.params, "from": owner}, now),
    )
    return TransferRequested(delivery_id, run_id, owner)


def _run(run_id: str, contact_id: str, now: datetime) -> NewRun:
    state = ended(RunStatus.COMPLETED, now, reason="transfer requested through the API")
    return NewRun(
        id=run_id,
        contact_id=contact_id,
        playbook_id=API_PLAYBOOK,
        playbook_version=API_VERSION,
        trigger_event_id=None,
        cron_slot_id=None,
        started_at=now,
        state=state,
    )


def _trace(run_id: str, step: str, detail: dict[str, Any], now: datetime) -> list[TraceRow]:
    end = {"status": RunStatus.COMPLETED, "reason": "transfer requested through the API"}
    return [
        TraceRow(run_id=run_id, at=now, step=step, kind="send", detail=detail),
        TraceRow(run_id=run_id, at=now, step=None, kind="end", detail=end),
    ]


async def record_failure(
    sessions: async_sessionmaker[AsyncSession], failure: TransferFailure, *, now: datetime
) -> int:
    """Fail the customer's awaiting transfers to the takeover staff with WeCom's reason;
    returns how many. A retried callback finds none left awaiting."""
    reason = FAIL_REASONS.get(failure.reason, failure.reason)
    response = f"transfer_fail: {failure.reason} {reason}"[:2000]
    async with unit_of_work(sessions) as session:
        rows = await repo.awaiting_of(
            session, wecom_userid=failure.customer, channel=TRANSFER_CHANNEL
        )
        failed = [r for r in rows if (r.params or {}).get("to") == failure.takeover]
        await awaiting_repo.finish(session, [_failed(r, response, now) for r in failed])
        await deliveries_repo.insert_attempts(session, [_attempt(r, response, now) for r in failed])
        await runs_repo.insert_trace(session, [_failed_trace(r, response, now) for r in failed])
    return len(failed)


def _failed(row: Record, response: str, now: datetime) -> dict[str, Any]:
    return {
        "id": row.id,
        "status": DeliveryStatus.FAILED,
        "skip_reason": None,
        "due_at": now,
        "sent_at": None,
        "last_error": response,
        "updated_at": now,
    }


def _attempt(row: Record, response: str, now: datetime) -> NewAttempt:
    return NewAttempt(
        delivery_id=row.id,
        at=now,
        outcome=AttemptOutcome.FAILED,
        response=response,
        duration_ms=0,
    )


def _failed_trace(row: Record, response: str, now: datetime) -> TraceRow:
    detail = {
        "delivery_id": row.id,
        "channel": row.channel,
        "status": DeliveryStatus.FAILED,
        "attempt": row.attempts,
        "skip_reason": None,
        "response": response,
        "vendor_ref": row.vendor_ref,
    }
    return TraceRow(run_id=row.run_id, at=now, step=row.step, kind="delivery", detail=detail)
