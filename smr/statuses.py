"""The closed sets of states SMR stores: a delivery's status, why one was skipped, what one
attempt came to, and a run's status.

They are ``StrEnum``s, so a member is its stored text (``DeliveryStatus.SENT == "sent"``) and a
misspelt one fails the type check. The functions that decide a state produce these; see
``smr.services.delivery_state`` for a delivery's.
"""

from __future__ import annotations

from enum import StrEnum


class DeliveryStatus(StrEnum):
    """Where a delivery (an outbox row) stands.

    ``scheduled`` → ``sending`` (claimed) → ``sent`` | ``skipped`` | ``failed``, or back to
    ``scheduled`` to be retried or deferred; ``awaiting`` when a vendor accepted it and a staff
    member must confirm; ``uncertain`` when a worker died while sending on a channel that
    cannot dedupe a resend; ``cancelled`` by an admin or with its run.
    """

    SCHEDULED = "scheduled"
    SENDING = "sending"
    AWAITING = "awaiting"
    SENT = "sent"
    SKIPPED = "skipped"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNCERTAIN = "uncertain"


class SkipReason(StrEnum):
    """Why a delivery was ``skipped`` (never sent, by policy, by the playbook or by its
    channel)."""

    OPTED_OUT = "opted_out"
    EXITED = "exited"
    FREQUENCY_CAPPED = "frequency_capped"
    MISSING_IDENTITY = "missing_identity"
    TEMPLATE_ERROR = "template_error"
    WINDOW_EXPIRED = "window_expired"
    QUOTA_EXHAUSTED = "quota_exhausted"
    DRY_RUN = "dry_run"
    DUPLICATE = "duplicate"
    #: Marketing on a channel ``policies.yaml`` requires consent for, and none recorded.
    NO_CONSENT = "no_consent"


class AttemptOutcome(StrEnum):
    """What one call to a channel (or one check on an awaiting send) came to: a delivery
    attempt's ``outcome``. ``deferred`` is the gate's and never stored as an attempt."""

    SENT = "sent"
    AWAITING = "awaiting"
    SKIPPED = "skipped"
    FAILED = "failed"
    RETRY = "retry"
    DEFERRED = "deferred"


class RunStatus(StrEnum):
    """Where a run stands: ``waiting`` (for its wake time, or due) until it ends
    ``completed``, ``exited`` (an event ended it), ``failed`` or ``cancelled``. ``active``
    (a worker held it while advancing it) is no longer set: runs are advanced in one
    transaction by their partition's processor, and migration 0021 made the last ones
    waiting. A filter on it finds nothing."""

    ACTIVE = "active"
    WAITING = "waiting"
    COMPLETED = "completed"
    EXITED = "exited"
    FAILED = "failed"
    CANCELLED = "cancelled"
