"""The channel adapter contract. Vendors live in the top-level ``adapters`` package.

Exceptions raised by :meth:`ChannelAdapter.send`::

    SendError
    ├── RetriableSendError   try again later (timeouts, throttling, 5xx); may carry retry_after
    ├── PermanentSendError   the vendor refused for good (4xx-class); never retried
    └── SkippedSend          not sent by policy of the channel (a skip reason from the closed set)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import ClassVar, Literal, Protocol

from smr.content import Attachment, Kind
from smr.statuses import SkipReason

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


class Address(StrEnum):
    """What a channel may need to reach someone: a key of ``OutboundMessage.recipient``."""

    PHONE = "phone"
    WECOM_USERID = "wecom_userid"
    SHOP_CUSTOMER_ID = "shop_customer_id"
    #: The contact's owner staff: the attribute ``wecom_owner``, else the trigger's ``staff``.
    OWNER_STAFF = "owner_staff"
    WELCOME_CODE = "welcome_code"
    OPEN_KFID = "open_kfid"
    CHAT_ID = "chat_id"


#: Addresses only a run's trigger event carries, and the event types that carry them.
TRIGGER_ADDRESSES: dict[Address, frozenset[str]] = {
    Address.WELCOME_CODE: frozenset({"contact.added"}),
    Address.OPEN_KFID: frozenset({"chat.message"}),
    Address.CHAT_ID: frozenset({"group.joined", "group.left"}),
}


class Target(StrEnum):
    """Whom a channel's sends reach: a customer, a customer group, or nobody in particular
    (a Moments post the staff publish). Frequency caps protect customers, so they count only
    ``contact`` sends; quiet hours hold ``contact`` and ``group`` sends."""

    CONTACT = "contact"
    GROUP = "group"
    CORP = "corp"


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a channel declares about itself (``ChannelAdapter.capabilities``); ``check`` and
    ``simulate`` read it for the channel's vendor even where the mock stands in.

    - ``needs``: without any of these the send is skipped (``missing_identity``);
    - ``uses``: addresses it takes when present (WeCom kf: the account the customer wrote to);
    - ``idempotent``: the vendor dedupes by our delivery id, so a send whose worker was lost may
      go again (otherwise the delivery becomes ``uncertain``);
    - ``confirmed_by_staff``: the vendor makes a task a staff member confirms (WeCom 群发); one
      task per distinct text, so a text personalised per customer makes one task each;
    - ``target``: whom the sends reach (``Target``);
    - ``attachments``: the kinds of attachment it can send (none for an SMS; no mini-program
      card on Moments): ``check`` warns about others.
    """

    needs: frozenset[Address] = frozenset()
    uses: frozenset[Address] = frozenset()
    idempotent: bool = False
    confirmed_by_staff: bool = False
    target: Target = Target.CONTACT
    attachments: frozenset[Kind] = frozenset(Kind)

    @property
    def addressed(self) -> bool:
        """Whether a send needs more than the contact's identities: its owner staff or what
        the run's trigger carried, which dispatch then looks up."""
        beyond = {Address.OWNER_STAFF, *TRIGGER_ADDRESSES}
        return bool((self.needs | self.uses) & beyond)

    def missing(self, recipient: Mapping[str, str]) -> list[Address]:
        return sorted(a for a in self.needs if not recipient.get(a))


def reaching(channels: Mapping[str, Capabilities], addresses: Collection[str]) -> list[str]:
    """The channels that reach a contact with these ``addresses`` (its identity kinds, and
    ``owner_staff`` when it has one) wherever a run is: those reaching contacts that need
    nothing a trigger alone carries, and nothing the contact lacks."""
    return sorted(
        name
        for name, caps in channels.items()
        if caps.target == Target.CONTACT
        and not caps.needs & TRIGGER_ADDRESSES.keys()
        and caps.needs <= set(addresses)
    )


def capabilities_of(channels: Collection[str]) -> Mapping[str, Capabilities]:
    """What each channel declares, given a table of them; bare names declare nothing."""
    if isinstance(channels, Mapping):
        return channels
    return {name: Capabilities() for name in channels}


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
    #: What the message carries beside its text (pictures, links, cards, videos, files).
    attachments: tuple[Attachment, ...] = ()


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
        super().__init__(str(reason), response=response)
        self.reason: SkipReason = reason


class ChannelAdapter(Protocol):
    """One vendor channel: its ``name`` (``wecom.kf``) and what it declares (``capabilities``)."""

    name: ClassVar[str]

    @property
    def capabilities(self) -> Capabilities:
        """What the channel declares; usually a class attribute."""
        ...

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


async def send_alone(sender: BatchSender, message: OutboundMessage) -> SendResult:
    """``send`` for an adapter whose vendor call takes many messages: a batch of one."""
    (answer,) = await sender.send_batch([message])
    if isinstance(answer, SendError):
        raise answer
    return answer


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
