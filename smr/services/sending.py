"""One send through a channel adapter, turned into an outcome ready to be recorded."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from smr import content, logs
from smr.channels import (
    BatchSender,
    ChannelAdapter,
    OutboundMessage,
    PermanentSendError,
    RetriableSendError,
    SendError,
    SendResult,
    SkippedSend,
)
from smr.repositories import Record
from smr.repositories.rows import NewAttempt, TraceRow
from smr.services.delivery_state import (
    Accepted,
    Deferred,
    DeliveryState,
    Failed,
    Happened,
    Retriable,
    Sent,
    Skipped,
)
from smr.statuses import AttemptOutcome, DeliveryStatus, SkipReason

log = logging.getLogger(__name__)

RESPONSE_LIMIT = 1000


@dataclass(frozen=True)
class Outcome:
    """What handling one claimed delivery came to."""

    delivery: Record
    happened: Happened
    duration_ms: int
    rate_limit: dict[str, Any] | None = None  # the limit a deferred send waits for

    @property
    def attempt(self) -> AttemptOutcome:
        return self.happened.attempt

    @property
    def response(self) -> str | None:
        return self.happened.response

    @property
    def by_policy(self) -> bool:
        """Decided by the gate; the channel was never called."""
        h = self.happened
        return isinstance(h, Deferred) or (isinstance(h, Skipped) and h.by_policy)

    @property
    def skip_reason(self) -> SkipReason | None:
        return self.happened.reason if isinstance(self.happened, Skipped) else None


def message_of(delivery: Record, recipient: dict[str, str]) -> OutboundMessage:
    """The message a delivery sends. Raises PermanentSendError for a row whose attachments
    cannot be read back."""
    return OutboundMessage(
        delivery_id=delivery.id,
        channel=delivery.channel,
        category=delivery.category,
        contact_id=delivery.contact_id,
        recipient=recipient,
        text=delivery.text,
        template_code=delivery.template_code,
        params=delivery.params or {},
        attachments=attachments_of(delivery),
    )


def attachments_of(delivery: Record) -> tuple[content.Attachment, ...]:
    stored = getattr(delivery, "attachments", None) or []
    try:
        if not isinstance(stored, list) or not all(isinstance(a, dict) for a in stored):
            raise ValueError("not a list of objects")
        return tuple(content.from_json(item) for item in stored)
    except ValueError as exc:
        raise PermanentSendError(f"the delivery's attachments cannot be read: {exc}") from None


def _message_or_error(delivery: Record, recipient: dict[str, str]) -> OutboundMessage | SendError:
    try:
        return message_of(delivery, recipient)
    except SendError as exc:
        return exc


async def send_one(
    adapter: ChannelAdapter,
    delivery: Record,
    recipient: dict[str, str],
    *,
    limit_seconds: float,
) -> Outcome:
    started = time.perf_counter()
    try:
        with logs.bind(delivery_id=delivery.id, run_id=delivery.run_id):
            send = adapter.send(message_of(delivery, recipient))
            sent = await asyncio.wait_for(send, limit_seconds)
    except Exception as exc:  # classified: every failure becomes an outcome, none is lost
        answer: SendResult | BaseException = _failure(exc, adapter, limit_seconds)
    else:
        answer = sent
    return _outcome(delivery, answer, _ms_since(started))


async def send_batch(
    adapter: ChannelAdapter,
    batch: Sequence[tuple[Record, dict[str, str]]],
    *,
    limit_seconds: float,
) -> list[Outcome]:
    """Send through an adapter that takes many messages per call (see BatchSender)."""
    sender: BatchSender = adapter  # type: ignore[assignment]
    started = time.perf_counter()
    built = [_message_or_error(d, r) for d, r in batch]  # a row it cannot read fails alone
    messages = [m for m in built if isinstance(m, OutboundMessage)]
    answers: Sequence[SendResult | BaseException] = []
    try:
        with logs.bind(delivery_ids=[d.id for d, _ in batch]):
            if messages:
                answers = await asyncio.wait_for(sender.send_batch(messages), limit_seconds)
    except Exception as exc:  # the whole call failed: every message shares the answer
        answers = [_failure(exc, adapter, limit_seconds)] * len(messages)
    took, sent = _ms_since(started), iter(answers)
    return [
        _outcome(d, m if isinstance(m, SendError) else next(sent), took)
        for (d, _), m in zip(batch, built, strict=True)
    ]


def _failure(exc: Exception, adapter: ChannelAdapter, limit_seconds: float) -> BaseException:
    if isinstance(exc, SendError):
        return exc
    if isinstance(exc, TimeoutError):
        return RetriableSendError(f"timed out after {limit_seconds:.0f}s")
    # An adapter bug must not lose the delivery: retry it, and say so in the log.
    log.exception("channel %s raised unexpectedly", adapter.name, exc_info=exc)
    return RetriableSendError(f"internal error: {type(exc).__name__}: {exc}")


def _outcome(delivery: Record, answer: SendResult | BaseException, took: int) -> Outcome:
    return Outcome(delivery, _happened(answer), took)


def _happened(answer: SendResult | BaseException) -> Happened:
    if isinstance(answer, SendResult):
        response = truncate(answer.response or answer.vendor_message_id)
        if answer.awaiting and answer.vendor_message_id:
            return Accepted(response, vendor_ref=answer.vendor_message_id)
        return Sent(response)
    response = truncate(getattr(answer, "response", None) or str(answer))
    if isinstance(answer, SkippedSend):
        return Skipped(answer.reason, response)
    if isinstance(answer, PermanentSendError):
        return Failed(response)
    return Retriable(response, retry_after=getattr(answer, "retry_after", None))


def _ms_since(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def attempt_row(outcome: Outcome, now: datetime) -> NewAttempt:
    return NewAttempt(
        delivery_id=outcome.delivery.id,
        at=now,
        outcome=outcome.attempt,
        response=outcome.response,
        duration_ms=outcome.duration_ms,
    )


def trace_row(outcome: Outcome, final: DeliveryState, now: datetime) -> TraceRow:
    d = outcome.delivery
    detail: dict[str, Any] = {
        "delivery_id": d.id,
        "channel": d.channel,
        "status": final.status,
        "attempt": final.attempts,
        "skip_reason": outcome.skip_reason,
        "response": outcome.response,
    }
    if final.status is DeliveryStatus.SCHEDULED:
        detail["next_at"] = final.due_at.isoformat()
    kind = "delivery"
    if outcome.rate_limit is not None:
        kind, detail["limit"] = "rate_limited", outcome.rate_limit
    return TraceRow(run_id=d.run_id, at=now, step=d.step, kind=kind, detail=detail)


def truncate(text: str | None) -> str | None:
    if text is None or len(text) <= RESPONSE_LIMIT:
        return text
    return text[: RESPONSE_LIMIT - 1] + "…"
