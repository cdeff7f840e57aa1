"""A delivery's state machine: where a claimed delivery goes after what happened to it.

Two workers claim deliveries: the dispatcher (``sending``: the gate decides, then the channel
is called) and the checker (``awaiting``: the vendor accepted the send, a staff member must
confirm it). Both describe what happened as one of the ``Happened`` values and ask
``next_state`` for the row to store::

    sending  ── Sent ─────────────────────────────→ sent
             ── Accepted ─────────────────────────→ awaiting (checked from FIRST_CHECK on)
             ── Skipped ──────────────────────────→ skipped
             ── Failed ───────────────────────────→ failed
             ── Retriable, attempts left ─────────→ scheduled (after a backoff)
             ── Retriable, no attempt left ───────→ failed
             ── Deferred (by the gate) ───────────→ scheduled (at ``until``)
    awaiting ── Sent | Skipped | Failed ──────────→ sent | skipped | failed
             ── StillAwaiting ────────────────────→ awaiting (checked again later)

Pure: no I/O, no clock (``now`` is given), the jitter drawn through ``Retries``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, ClassVar, assert_never

from smr.repositories import Record
from smr.services.retries import Retries
from smr.statuses import AttemptOutcome, DeliveryStatus, SkipReason

#: When an accepted send is checked first.
FIRST_CHECK = timedelta(minutes=1)
LONGEST_INTERVAL = timedelta(hours=1)


def next_check(age: timedelta) -> timedelta:
    """Check again after half the time the send has waited so far, within [1 min, 1 h]."""
    return min(LONGEST_INTERVAL, max(FIRST_CHECK, age / 2))


@dataclass(frozen=True, slots=True)
class DeliveryState:
    """The columns of a delivery its state machine decides."""

    status: DeliveryStatus
    skip_reason: SkipReason | None
    due_at: datetime
    sent_at: datetime | None
    last_error: str | None
    attempts: int

    @classmethod
    def of(cls, row: Record) -> DeliveryState:
        """The state of a delivery as its claim returned it."""
        reason = SkipReason(row.skip_reason) if row.skip_reason else None
        status = DeliveryStatus(row.status)
        return cls(status, reason, row.due_at, row.sent_at, row.last_error, row.attempts)

    def row(self, delivery_id: str, now: datetime) -> dict[str, Any]:
        """The delivery's row for the repositories (``finish``)."""
        return {
            "id": delivery_id,
            "status": self.status,
            "skip_reason": self.skip_reason,
            "due_at": self.due_at,
            "sent_at": self.sent_at,
            "last_error": self.last_error,
            "attempts": self.attempts,
            "updated_at": now,
        }


@dataclass(frozen=True, slots=True)
class Sent:
    """The vendor delivered it; a check says when (``at``), a send means now."""

    attempt: ClassVar[AttemptOutcome] = AttemptOutcome.SENT
    response: str | None
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Accepted:
    """The vendor accepted it as ``vendor_ref``; it is delivered once a staff member
    confirms."""

    attempt: ClassVar[AttemptOutcome] = AttemptOutcome.AWAITING
    response: str | None
    vendor_ref: str


@dataclass(frozen=True, slots=True)
class Skipped:
    """Not sent, for ``reason``: by the gate (``by_policy``, not an attempt) or the channel."""

    attempt: ClassVar[AttemptOutcome] = AttemptOutcome.SKIPPED
    reason: SkipReason
    response: str | None
    by_policy: bool = False


@dataclass(frozen=True, slots=True)
class Failed:
    """The vendor refused it for good."""

    attempt: ClassVar[AttemptOutcome] = AttemptOutcome.FAILED
    response: str | None


@dataclass(frozen=True, slots=True)
class Retriable:
    """A failure for the moment; the vendor may say how long to wait (``retry_after``, s)."""

    attempt: ClassVar[AttemptOutcome] = AttemptOutcome.RETRY
    response: str | None
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class Deferred:
    """The gate holds it until ``until`` (quiet hours, a cap, a rate limit, a busy contact);
    the channel was not called, so it is not an attempt. ``response``: why."""

    attempt: ClassVar[AttemptOutcome] = AttemptOutcome.DEFERRED
    until: datetime
    response: str


@dataclass(frozen=True, slots=True)
class StillAwaiting:
    """A check found the accepted send not delivered yet, ``waited`` after it was accepted;
    the vendor may ask for ``retry_after`` seconds before the next check."""

    attempt: ClassVar[AttemptOutcome] = AttemptOutcome.AWAITING
    waited: timedelta
    retry_after: float | None = None
    response: str | None = None


Happened = Sent | Accepted | Skipped | Failed | Retriable | Deferred | StillAwaiting


def next_state(
    was: DeliveryState, happened: Happened, *, retries: Retries, now: datetime
) -> DeliveryState:
    """The state of a claimed delivery (``was``: as its claim returned it, ``sending`` or
    ``awaiting``) after ``happened``. ``attempts`` already counts the claim; a gate decision
    gives it back. A retriable failure is retried while fewer than ``retries.max_attempts``
    calls were made, then fails with the vendor's last answer."""
    match happened:
        case Sent():
            return _ended(was, DeliveryStatus.SENT, now=now, sent_at=min(happened.at or now, now))
        case Skipped():
            attempts = was.attempts - 1 if happened.by_policy else was.attempts
            ended = _ended(was, DeliveryStatus.SKIPPED, now=now, error=happened.response)
            return replace(ended, skip_reason=happened.reason, attempts=attempts)
        case Failed():
            return _ended(was, DeliveryStatus.FAILED, now=now, error=happened.response)
        case Accepted():
            return _pending(was, DeliveryStatus.AWAITING, now + FIRST_CHECK, happened.response)
        case Deferred():
            later = _pending(was, DeliveryStatus.SCHEDULED, happened.until, happened.response)
            return replace(later, attempts=was.attempts - 1)
        case Retriable():
            if was.attempts >= retries.max_attempts:
                return _ended(was, DeliveryStatus.FAILED, now=now, error=happened.response)
            due = now + retries.delay(was.attempts, happened.retry_after)
            return _pending(was, DeliveryStatus.SCHEDULED, due, happened.response)
        case StillAwaiting():
            # Checking sooner than the vendor asks is pointless, later than planned too.
            wait = max(timedelta(seconds=happened.retry_after or 0), next_check(happened.waited))
            return _pending(was, DeliveryStatus.AWAITING, now + wait, None)
        case _:
            assert_never(happened)


def _ended(
    was: DeliveryState,
    status: DeliveryStatus,
    *,
    now: datetime,
    sent_at: datetime | None = None,
    error: str | None = None,
) -> DeliveryState:
    # A sent delivery keeps the due_at it was sent for; a checked one held its check's lease
    # there, so it gets the time it ended.
    due_at = now if was.status is DeliveryStatus.AWAITING else was.due_at
    return DeliveryState(status, None, due_at, sent_at, error, was.attempts)


def _pending(
    was: DeliveryState, status: DeliveryStatus, due_at: datetime, error: str | None
) -> DeliveryState:
    return DeliveryState(status, None, due_at, None, error, was.attempts)
