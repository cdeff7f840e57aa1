"""The in-memory state of a contact that a batch of events (or a woken run) changes, written
back once at the end (``smr.services.contacts.writes``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from smr.playbooks.context import GroupView
from smr.schemas import ConsentData, ContactRef, OrderData
from smr.services import purchases as purchase_history
from smr.subjects import ContactKind

Identity = tuple[str, str]
#: The event type whose time is a contact's ``last_message_at``.
CHAT_MESSAGE = "chat.message"
#: How many calendar months of spend a contact keeps.
SPEND_MONTHS = 13


@dataclass
class ContactState:
    """A contact as a batch of events changes it; written back once at the end."""

    id: str
    name: str | None
    tags: list[str]
    attributes: dict[str, Any]
    opted_out: list[str]
    orders: int
    total_spent: Decimal
    first_order_at: datetime | None
    last_order_at: datetime | None
    created_at: datetime
    last_seen_at: datetime | None = None
    last_message_at: datetime | None = None
    monthly_spend: dict[str, str] = field(default_factory=dict)
    #: Marketing consent per channel (``consent``).
    consents: dict[str, Any] = field(default_factory=dict)
    #: What it bought, by SKU and category (``smr.services.purchases``).
    purchases: purchase_history.Purchases = field(default_factory=dict)
    #: The segments it is in (``smr.services.segments``).
    segments: list[str] = field(default_factory=list)
    identities: dict[str, str] = field(default_factory=dict)
    #: Created by this batch (``resolve`` inserted it as ``blank`` made it).
    is_new: bool = False
    #: Identities it gained in this batch (``writes`` attaches them).
    new_identities: dict[str, str] = field(default_factory=dict)
    #: The WeCom customer groups it is a member of (``contact.groups``; see ``with_groups``).
    groups: list[GroupView] = field(default_factory=list, compare=False)
    #: A new contact's event log partition: its first event's (``smr.eventlog``); stored once.
    partition: int = field(default=0, compare=False)
    #: Erased at the person's request (``smr.services.privacy``): events change nothing of it.
    erased: bool = field(default=False, compare=False)
    #: A person, a group's or the corp's row, or a tombstone (``smr.subjects.ContactKind``).
    kind: str = field(default=ContactKind.PERSON, compare=False)
    #: A merged contact's survivor (``smr.services.merging``).
    merged_into: str | None = field(default=None, compare=False)
    #: The stored columns as loaded, to write back only contacts a batch changed.
    _loaded: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._loaded = self._columns()

    def _columns(self) -> dict[str, Any]:
        # The stored columns, each list and dict copied (the other values are immutable):
        # steps replace attribute values, they never edit them in place.
        return {name: _shallow_copy(value) for name, value in self.row(self.created_at).items()}

    @property
    def claims(self) -> list[Identity]:
        """A new contact's identities as it was created (it owns them once they land)."""
        return [(k, v) for k, v in self.identities.items() if k not in self.new_identities]

    @property
    def gone(self) -> bool:
        """Erased, or merged into another contact: its runs are no longer its own to advance."""
        return self.erased or self.merged_into is not None

    @property
    def changed(self) -> bool:
        return self._columns() != self._loaded

    @classmethod
    def from_row(cls, row: Mapping[str, Any], identities: dict[str, str]) -> ContactState:
        return cls(
            id=row["id"],
            name=row["name"],
            tags=list(row["tags"]),
            attributes=dict(row["attributes"]),
            opted_out=list(row["opted_out"]),
            orders=row["orders"],
            total_spent=Decimal(row["total_spent"]),
            first_order_at=row["first_order_at"],
            last_order_at=row["last_order_at"],
            created_at=row["created_at"],
            last_seen_at=row["last_seen_at"],
            last_message_at=row["last_message_at"],
            monthly_spend=dict(row["monthly_spend"]),
            consents=dict(row["consents"]),
            purchases=dict(row["purchases"]),
            segments=list(row["segments"]),
            identities=identities,
            erased=row["kind"] == ContactKind.ERASED,
            kind=row["kind"],
            merged_into=row["merged_into"],
            partition=row["partition"],
        )

    @classmethod
    def blank(
        cls,
        contact_id: str,
        now: datetime,
        *,
        partition: int,
        identities: dict[str, str] | None = None,
    ) -> ContactState:
        """A contact created now, as it reads back from the database."""
        return cls(
            id=contact_id,
            name=None,
            tags=[],
            attributes={},
            opted_out=[],
            orders=0,
            total_spent=Decimal("0.00"),  # the column's scale
            first_order_at=None,
            last_order_at=None,
            created_at=now,
            identities=dict(identities or {}),
            is_new=True,
            partition=partition,
        )

    def absorb(self, ref: ContactRef, *, identities: dict[str, str]) -> None:
        """Take the event's name and attributes, and the given identities we did not know
        (none of it when the contact is erased)."""
        if self.erased:
            return
        if ref.name:
            self.name = ref.name
        self.attributes.update(ref.attributes)
        for kind, value in identities.items():
            if kind not in self.identities:
                self.identities[kind] = value
                self.new_identities[kind] = value

    def take_in(self, other: ContactState) -> None:
        """Take in what ``other``, the same person, knew, as a merge does: its tags,
        attributes this contact lacks, stats and spend added up, purchase history combined,
        opt-outs of either (and only the consents no opt-out withdraws), its groups, and its
        identities of kinds this one lacks (the database moves them all)."""
        self.name = self.name or other.name
        self.tags = self.tags + [t for t in other.tags if t not in self.tags]
        self.attributes = {**other.attributes, **self.attributes}
        self.orders += other.orders
        self.total_spent += other.total_spent
        firsts = (self.first_order_at, other.first_order_at)
        self.first_order_at = min(filter(None, firsts), default=None)
        self.last_order_at = _latest(self.last_order_at, other.last_order_at)
        self.last_seen_at = _latest(self.last_seen_at, other.last_seen_at)
        self.last_message_at = _latest(self.last_message_at, other.last_message_at)
        for month, amount in other.monthly_spend.items():
            self._add_spend(month, Decimal(amount))
        self.purchases = purchase_history.combined(self.purchases, other.purchases)
        self.opted_out = self.opted_out + [c for c in other.opted_out if c not in self.opted_out]
        consents = {**other.consents, **self.consents}
        for channel, given in other.consents.items():
            if _at(given) > _at(consents[channel]):
                consents[channel] = given
        stopped = set(self.opted_out)
        self.consents = {c: v for c, v in consents.items() if not {"*", c} & stopped}
        self.identities = {**other.identities, **self.identities}
        chats = {g.chat_id for g in self.groups}
        self.groups = self.groups + [g for g in other.groups if g.chat_id not in chats]

    def seen(self, event_type: str, occurred_at: datetime) -> None:
        """An event of the contact's happened at ``occurred_at`` (a chat message's is also its
        latest message, when it is the latest)."""
        self.last_seen_at = _latest(self.last_seen_at, occurred_at)
        if event_type == CHAT_MESSAGE:
            self.last_message_at = _latest(self.last_message_at, occurred_at)

    def apply_order(
        self,
        event_type: str,
        order: OrderData,
        occurred_at: datetime,
        *,
        month: str,
        cycles: Mapping[str, float] = purchase_history.EMPTY,
    ) -> None:
        """Count a paid order or take back a refund, in the stats and the purchase history;
        ``month`` is the event's local "YYYY-MM", ``cycles`` the days a unit of each SKU
        lasts (for its supply)."""
        if event_type == "order.paid":
            self.purchases = purchase_history.paid(self.purchases, order, occurred_at, cycles)
            self.orders += 1
            self.total_spent += order.total
            self.first_order_at = min(filter(None, (self.first_order_at, occurred_at)))
            self.last_order_at = max(filter(None, (self.last_order_at, occurred_at)))
            self._add_spend(month, order.total)
        elif event_type == "order.refunded":
            self.purchases = purchase_history.refunded(self.purchases, order, cycles)
            self.total_spent = max(Decimal(0), self.total_spent - order.total)
            self._add_spend(month, -order.total)

    def _add_spend(self, month: str, amount: Decimal) -> None:
        spent = max(Decimal(0), Decimal(self.monthly_spend.get(month, "0")) + amount)
        self.monthly_spend[month] = str(spent)
        for old in sorted(self.monthly_spend)[:-SPEND_MONTHS]:
            del self.monthly_spend[old]

    def opt_out(self, channel: object) -> None:
        """Stop marketing on one channel, or on all ("*") when none is named: the consent
        given for it, if any, is withdrawn."""
        scope = str(channel) if channel else "*"
        if scope not in self.opted_out:
            self.opted_out.append(scope)
        self.consents = (
            {} if scope == "*" else {k: v for k, v in self.consents.items() if k != scope}
        )

    def consent(self, consent: ConsentData, *, at: datetime, event_id: str) -> None:
        """Record the customer's consent to marketing on ``consent.channel`` (the latest one
        given); an opt-out of that channel is lifted (one of all marketing stays)."""
        self.consents = {
            **self.consents,
            consent.channel: {
                "at": at.isoformat(),
                "source": consent.source,
                "wording": consent.wording,
                "campaign": consent.campaign,
                "event_id": event_id,
            },
        }
        self.opted_out = [scope for scope in self.opted_out if scope != consent.channel]

    def row(self, now: datetime) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "tags": self.tags,
            "attributes": self.attributes,
            "opted_out": self.opted_out,
            "consents": self.consents,
            "purchases": self.purchases,
            "segments": self.segments,
            "orders": self.orders,
            "total_spent": self.total_spent,
            "first_order_at": self.first_order_at,
            "last_order_at": self.last_order_at,
            "last_seen_at": self.last_seen_at,
            "last_message_at": self.last_message_at,
            "monthly_spend": self.monthly_spend,
            "created_at": self.created_at,
            "updated_at": now,
        }


def _latest(known: datetime | None, other: datetime | None) -> datetime | None:
    return max(filter(None, (known, other)), default=None)


def _at(consent: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(consent["at"])


def _shallow_copy(value: Any) -> Any:
    """``copy.copy`` for a column's value, without its generic dispatch."""
    if isinstance(value, list | dict):
        return value.copy()
    return value
