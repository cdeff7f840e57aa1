"""The channel adapter contract. Vendors live in the top-level ``adapters`` package.

Exceptions raised by :meth:`ChannelAdapter.send`::

    SendError
    ├── RetriableSendError   try again later (timeouts, throttling, 5xx); may carry retry_after
    ├── PermanentSendError   the vendor refused for good (4xx-class); never retried
    └── SkippedSend          not sent by policy of the channel (a skip reason from the closed set)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import ClassVar, Literal, Protocol

SkipReason = Literal[
    "opted_out",
    "exited",
    "frequency_capped",
    "missing_identity",
    "template_error",
    "window_expired",
    "quota_exhausted",
    "dry_run",
    "duplicate",
]

#: What a rate limit counts apart: each staff member a channel reaches or sends as
#: (``owner_staff``), or each contact.
RateKey = Literal["staff", "contact"]


@dataclass(frozen=True, slots=True)
class SendRate:
    """At most ``max`` sends within any ``per``, for each ``key`` apart (None: all together).

    An adapter declares its vendor's limits as ``send_rates: ClassVar[tuple[SendRate, ...]]``
    (optional); ``rate_limits`` in policies.yaml replace them channel by channel."""

    max: int
    per: timedelta
    key: RateKey | None = None


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    delivery_id: str
    channel: str
    category: str
    contact_id: str
    recipient: Mapping[str, str]
    text: str | None
    template_code: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SendResult:
    """The vendor took the message. ``awaiting``: it has not reached the customer yet (a task a
    staff member confirms); the adapter's ``poll_reports`` later says what became of it, by
    ``vendor_message_id``, and ``sent_at`` when the vendor says when it reached the customer."""

    vendor_message_id: str | None = None
    response: str | None = None
    awaiting: bool = False
    sent_at: datetime | None = None


class SendError(Exception):
    """The channel did not deliver the message."""

    def __init__(self, message: str, *, response: str | None = None) -> None:
        super().__init__(message)
        self.response = response or message


class RetriableSendError(SendError):
    """A temporary failure; the delivery is retried with backoff."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, response: str | None = None
    ) -> None:
        super().__init__(message, response=response)
        self.retry_after = retry_after


class PermanentSendError(SendError):
    """The vendor refused the message for good."""


class SkippedSend(SendError):
    """The channel declined to send for a reason from the closed set of skip reasons."""

    def __init__(self, reason: SkipReason, *, response: str | None = None) -> None:
        super().__init__(reason, response=response)
        self.reason: SkipReason = reason


class ChannelAdapter(Protocol):
    """One vendor channel.

    ``idempotent`` says whether the vendor dedupes by our delivery id, so that a delivery whose
    worker crashed mid-send may be sent again safely.
    """

    name: ClassVar[str]
    idempotent: ClassVar[bool]

    async def send(self, message: OutboundMessage) -> SendResult:
        """Send one message. Raises RetriableSendError, PermanentSendError or SkippedSend."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class BatchSender(Protocol):
    """An adapter that can send many messages in one vendor call (optional).

    ``send_batch`` returns, in order, a SendResult or the SendError each message came to; it
    raises only for a failure of the whole call (then every message shares it).
    """

    async def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult | SendError]:
        """Send many messages at once."""
        ...


@dataclass(frozen=True, slots=True)
class Pending:
    """A message a vendor accepted with ``SendResult(awaiting=True)`` at ``accepted_at``."""

    message: OutboundMessage
    vendor_ref: str
    accepted_at: datetime


class ReportPoller(Protocol):
    """An adapter whose sends are confirmed later (optional).

    ``poll_reports`` returns, in order, for each pending message: a SendResult (it reached the
    customer), a SkippedSend or PermanentSendError (it never will), or None (not yet). It raises
    only for a failure of the whole poll; the messages then stay pending.
    """

    async def poll_reports(
        self, pending: Sequence[Pending], *, now: datetime
    ) -> list[SendResult | SendError | None]:
        """Ask the vendor what became of pending messages."""
        ...


@dataclass(frozen=True, slots=True)
class ContactProfile:
    """What a vendor knows of a customer: their name, a phone, attributes to keep."""

    name: str | None = None
    phone: str | None = None
    attributes: Mapping[str, object] = field(default_factory=dict)


class ContactDirectory(Protocol):
    """An adapter that can look a customer up by their id with the vendor (optional)."""

    async def profile(self, *, external_userid: str, staff: str | None) -> ContactProfile:
        """The customer as the vendor describes them to ``staff``; raises SendError."""
        ...
