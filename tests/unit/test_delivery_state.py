"""A delivery's state machine: (the delivery as claimed, what happened) → the state stored."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from smr.repositories import Record
from smr.services.delivery_state import (
    FIRST_CHECK,
    Accepted,
    Deferred,
    DeliveryState,
    Failed,
    Happened,
    Retriable,
    Sent,
    Skipped,
    StillAwaiting,
    next_check,
    next_state,
)
from smr.services.retries import Retries
from smr.statuses import AttemptOutcome, DeliveryStatus, SkipReason

NOW = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
DUE = NOW - timedelta(seconds=5)  # when the delivery was due for sending
LEASE_END = NOW + timedelta(seconds=30)  # a checker's claim pushes due_at there
RETRIES = Retries(max_attempts=3, base_seconds=2.0, cap_seconds=600.0, draw=lambda: 0.5)

SCHEDULED, SENDING, AWAITING = (
    DeliveryStatus.SCHEDULED,
    DeliveryStatus.SENDING,
    DeliveryStatus.AWAITING,
)
SENT, SKIPPED, FAILED = DeliveryStatus.SENT, DeliveryStatus.SKIPPED, DeliveryStatus.FAILED


def sending(attempts: int = 1) -> DeliveryState:
    """Claimed by a dispatcher: the claim counted this attempt."""
    return DeliveryState(SENDING, None, DUE, None, "503 before", attempts)


def awaiting() -> DeliveryState:
    """Claimed by a checker: accepted by the vendor on the first attempt."""
    return DeliveryState(AWAITING, None, LEASE_END, None, "task accepted", 1)


def state(
    status: DeliveryStatus,
    due_at: datetime,
    *,
    reason: SkipReason | None = None,
    sent_at: datetime | None = None,
    error: str | None = None,
    attempts: int = 1,
) -> DeliveryState:
    return DeliveryState(status, reason, due_at, sent_at, error, attempts)


AFTER_A_SEND = [
    pytest.param(sending(), Sent("ok"), state(SENT, DUE, sent_at=NOW), id="sent"),
    pytest.param(
        sending(),
        Accepted("task msg_1", vendor_ref="msg_1"),
        state(AWAITING, NOW + FIRST_CHECK, error="task msg_1"),
        id="accepted-awaits-its-first-check",
    ),
    pytest.param(
        sending(),
        Skipped(SkipReason.MISSING_IDENTITY, "no phone"),
        state(SKIPPED, DUE, reason=SkipReason.MISSING_IDENTITY, error="no phone"),
        id="skipped-by-the-channel-is-an-attempt",
    ),
    pytest.param(
        sending(),
        Skipped(SkipReason.OPTED_OUT, "contact opted out of sms", by_policy=True),
        state(
            SKIPPED, DUE, reason=SkipReason.OPTED_OUT, error="contact opted out of sms", attempts=0
        ),
        id="skipped-by-the-gate-is-not-an-attempt",
    ),
    pytest.param(
        sending(), Failed("40003 invalid"), state(FAILED, DUE, error="40003 invalid"), id="failed"
    ),
    pytest.param(
        sending(2),
        Deferred(NOW + timedelta(hours=8), "quiet hours until 08:00"),
        state(SCHEDULED, NOW + timedelta(hours=8), error="quiet hours until 08:00", attempts=1),
        id="deferred-by-the-gate-is-not-an-attempt",
    ),
    pytest.param(
        sending(1),
        Retriable("503"),
        state(SCHEDULED, NOW + timedelta(seconds=1), error="503"),
        id="first-retry-draws-below-base",
    ),
    pytest.param(
        sending(2),
        Retriable("503"),
        state(SCHEDULED, NOW + timedelta(seconds=2), error="503", attempts=2),
        id="second-retry-draws-below-twice-base",
    ),
    pytest.param(
        sending(1),
        Retriable("45009 busy", retry_after=30.0),
        state(SCHEDULED, NOW + timedelta(seconds=30), error="45009 busy"),
        id="retry-after-is-a-floor",
    ),
    pytest.param(
        sending(1),
        Retriable("429", retry_after=0.25),
        state(SCHEDULED, NOW + timedelta(seconds=1), error="429"),
        id="a-shorter-retry-after-loses-to-the-jitter",
    ),
    pytest.param(
        sending(3),
        Retriable("503 last"),
        state(FAILED, DUE, error="503 last", attempts=3),
        id="no-attempt-left-fails-with-the-last-answer",
    ),
    pytest.param(
        sending(4),
        Retriable("503"),
        state(FAILED, DUE, error="503", attempts=4),
        id="past-the-ceiling-fails-too",
    ),
]

AFTER_A_CHECK = [
    pytest.param(
        awaiting(),
        Sent("confirmed", at=NOW - timedelta(minutes=10)),
        state(SENT, NOW, sent_at=NOW - timedelta(minutes=10)),
        id="sent-when-the-vendor-says",
    ),
    pytest.param(
        awaiting(),
        Sent("confirmed", at=NOW + timedelta(minutes=5)),
        state(SENT, NOW, sent_at=NOW),
        id="sent-never-in-the-future",
    ),
    pytest.param(
        awaiting(), Sent("confirmed"), state(SENT, NOW, sent_at=NOW), id="sent-when-learnt"
    ),
    pytest.param(
        awaiting(),
        Skipped(SkipReason.QUOTA_EXHAUSTED, "41048"),
        state(SKIPPED, NOW, reason=SkipReason.QUOTA_EXHAUSTED, error="41048"),
        id="check-skipped",
    ),
    pytest.param(
        awaiting(), Failed("refused"), state(FAILED, NOW, error="refused"), id="check-failed"
    ),
    pytest.param(
        awaiting(),
        StillAwaiting(timedelta(seconds=30)),
        state(AWAITING, NOW + FIRST_CHECK),
        id="fresh-send-checked-again-in-a-minute",
    ),
    pytest.param(
        awaiting(),
        StillAwaiting(timedelta(minutes=10)),
        state(AWAITING, NOW + timedelta(minutes=5)),
        id="checked-again-after-half-its-wait",
    ),
    pytest.param(
        awaiting(),
        StillAwaiting(timedelta(hours=5)),
        state(AWAITING, NOW + timedelta(hours=1)),
        id="checked-at-least-hourly",
    ),
    pytest.param(
        awaiting(),
        StillAwaiting(timedelta(minutes=10), retry_after=3600.0, response="45009 busy"),
        state(AWAITING, NOW + timedelta(hours=1)),
        id="not-before-the-vendors-retry-after",
    ),
    pytest.param(
        awaiting(),
        StillAwaiting(timedelta(minutes=10), retry_after=60.0),
        state(AWAITING, NOW + timedelta(minutes=5)),
        id="a-shorter-retry-after-keeps-the-planned-check",
    ),
]


@pytest.mark.parametrize(("was", "happened", "expected"), AFTER_A_SEND + AFTER_A_CHECK)
def test_next_state(was: DeliveryState, happened: Happened, expected: DeliveryState) -> None:
    assert next_state(was, happened, retries=RETRIES, now=NOW) == expected


def test_the_backoff_doubles_up_to_the_cap() -> None:
    retries = replace(RETRIES, max_attempts=20, draw=lambda: 0.999)

    dues = [
        next_state(sending(n), Retriable("503"), retries=retries, now=NOW).due_at - NOW
        for n in (1, 2, 3, 10, 19)
    ]

    assert [round(d.total_seconds()) for d in dues] == [2, 4, 8, 599, 599]


def test_only_a_retry_draws_a_jitter() -> None:
    draws: list[float] = []

    def draw() -> float:
        draws.append(0.5)
        return 0.5

    retries = replace(RETRIES, draw=draw)
    kinds: list[Happened] = [Sent("ok"), Failed("no"), Deferred(NOW, "busy"), Retriable("503")]
    for happened in kinds:
        next_state(sending(), happened, retries=retries, now=NOW)

    assert draws == [0.5]


@pytest.mark.parametrize(
    ("happened", "outcome"),
    [
        (Sent("ok"), AttemptOutcome.SENT),
        (Accepted("ok", vendor_ref="msg_1"), AttemptOutcome.AWAITING),
        (Skipped(SkipReason.DRY_RUN, None), AttemptOutcome.SKIPPED),
        (Failed("no"), AttemptOutcome.FAILED),
        (Retriable("503"), AttemptOutcome.RETRY),
        (Deferred(NOW, "quiet"), AttemptOutcome.DEFERRED),
        (StillAwaiting(timedelta(0)), AttemptOutcome.AWAITING),
    ],
)
def test_each_happening_names_its_attempt_outcome(
    happened: Happened, outcome: AttemptOutcome
) -> None:
    assert happened.attempt is outcome


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (timedelta(0), FIRST_CHECK),
        (timedelta(minutes=3), timedelta(minutes=1, seconds=30)),
        (timedelta(hours=2), timedelta(hours=1)),
        (timedelta(days=3), timedelta(hours=1)),
    ],
)
def test_next_check_is_half_the_wait_within_a_minute_and_an_hour(
    age: timedelta, expected: timedelta
) -> None:
    assert next_check(age) == expected


def test_a_claimed_row_becomes_a_state_and_the_state_a_row() -> None:
    row = Record(
        id="dl_1",
        status="awaiting",
        skip_reason=None,
        due_at=LEASE_END,
        sent_at=None,
        last_error="task accepted",
        attempts=1,
    )

    was = DeliveryState.of(row)
    after = next_state(was, Skipped(SkipReason.WINDOW_EXPIRED, "41050"), retries=RETRIES, now=NOW)

    assert was == awaiting()
    assert after.row("dl_1", NOW) == {
        "id": "dl_1",
        "status": "skipped",
        "skip_reason": "window_expired",
        "due_at": NOW,
        "sent_at": None,
        "last_error": "41050",
        "attempts": 1,
        "updated_at": NOW,
    }


def test_a_stored_status_outside_the_closed_set_is_refused() -> None:
    row = Record(
        status="snet", skip_reason=None, due_at=DUE, sent_at=None, last_error=None, attempts=1
    )

    with pytest.raises(ValueError, match="snet"):
        DeliveryState.of(row)
