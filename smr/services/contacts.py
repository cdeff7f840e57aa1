"""Contact resolution and the in-memory state a batch of events works on."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from smr.ids import new_id
from smr.playbooks.context import GroupView
from smr.repositories import contacts as repo
from smr.repositories import group_reads
from smr.repositories._bulk import Write, write_together
from smr.schemas import ConsentData, ContactRef, OrderData
from smr.services import purchases as purchase_history
from smr.subjects import ContactKind

Identity = tuple[str, str]
Owners = dict[Identity, str]
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
    monthly_spend: dict[str, str] = field(default_factory=dict)
    #: Marketing consent per channel (``consent``).
    consents: dict[str, Any] = field(default_factory=dict)
    #: What it bought, by SKU and category (``smr.services.purchases``).
    purchases: purchase_history.Purchases = field(default_factory=dict)
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
            monthly_spend=dict(row["monthly_spend"]),
            consents=dict(row["consents"]),
            purchases=dict(row["purchases"]),
            identities=identities,
            erased=row["kind"] == ContactKind.ERASED,
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

    def apply_order(
        self, event_type: str, order: OrderData, occurred_at: datetime, *, month: str
    ) -> None:
        """Count a paid order or take back a refund, in the stats and the purchase history;
        ``month`` is the event's local "YYYY-MM"."""
        if event_type == "order.paid":
            self.purchases = purchase_history.paid(self.purchases, order, occurred_at)
            self.orders += 1
            self.total_spent += order.total
            self.first_order_at = min(filter(None, (self.first_order_at, occurred_at)))
            self.last_order_at = max(filter(None, (self.last_order_at, occurred_at)))
            self._add_spend(month, order.total)
        elif event_type == "order.refunded":
            self.purchases = purchase_history.refunded(self.purchases, order)
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
            "orders": self.orders,
            "total_spent": self.total_spent,
            "first_order_at": self.first_order_at,
            "last_order_at": self.last_order_at,
            "monthly_spend": self.monthly_spend,
            "created_at": self.created_at,
            "updated_at": now,
        }


def _shallow_copy(value: Any) -> Any:
    """``copy.copy`` for a column's value, without its generic dispatch."""
    if isinstance(value, list | dict):
        return value.copy()
    return value


class HasContact(Protocol):
    """What ``resolve`` reads of an event: the contact it is about, and the event log
    partition a new contact made for it takes."""

    @property
    def contact(self) -> ContactRef: ...

    @property
    def partition(self) -> int: ...


async def resolve(
    session: AsyncSession, events: Sequence[HasContact], *, now: datetime
) -> list[ContactState]:
    """The contact of each event, by its explicit id or any identity; new contacts as needed.

    The known contacts are found and locked (PostgreSQL) with one query, so the events of one
    contact take turns. The contacts for the events nobody knows are inserted at once, blank,
    with the identities they claim; an identity a concurrent transaction claimed first
    (PostgreSQL waits for it to end) belongs to that transaction's contact, which is found,
    locked and used instead. So a customer whose first events arrive concurrently ends up as
    one contact. Contacts shared by several events are the same ContactState object, so
    changes made while handling one event are seen by the next; ``writes`` writes them back.
    """
    refs = [_Ref(e.contact, e.contact.identities(), e.partition) for e in events]
    asked = {pair for ref in refs for pair in ref.identities.items()}
    ids = {ref.id for ref in refs if ref.id}
    states = await _find(session, ids=ids, identities=asked)
    owners = _owners(states.values(), asked)
    created = _add_missing(refs, owners, states, now=now)
    if created:
        await _claim(session, created, owners, states, explicit=ids, now=now)
    resolved = [_state_for(ref, owners, states) for ref in refs]
    await with_groups(session, resolved)
    return resolved


@dataclass(frozen=True)
class _Ref:
    """An event's contact, with its identities read once."""

    contact: ContactRef
    identities: dict[str, str]
    partition: int

    @property
    def id(self) -> str | None:
        return self.contact.id


async def load_states(
    session: AsyncSession, ids: Iterable[str], *, lock: bool = True
) -> dict[str, ContactState]:
    """Contacts by id, with their identities and groups: locked, ready to be changed and
    written back, unless ``lock`` is False (to read them only)."""
    states = await _find(session, ids=set(ids), lock=lock)
    await with_groups(session, states.values())
    return states


async def with_groups(session: AsyncSession, states: Iterable[ContactState]) -> None:
    """Set each state's ``groups``: the customer groups its ``wecom_userid`` is a member of,
    for all of them in one query (none when no contact has a ``wecom_userid``)."""
    by_userid = {s.identities["wecom_userid"]: s for s in states if "wecom_userid" in s.identities}
    if not by_userid:
        return
    found = await group_reads.groups_of_customers(session, by_userid.keys())
    for userid, state in by_userid.items():
        state.groups = [
            GroupView(chat_id=g.chat_id, name=g.name, owner=g.owner, tags=list(g.tags))
            for g in found.get(userid, ())
        ]


async def _find(
    session: AsyncSession,
    *,
    ids: Collection[str] = (),
    identities: Collection[Identity] = (),
    lock: bool = True,
) -> dict[str, ContactState]:
    found = await repo.find(session, ids=ids, identities=identities, lock=lock)
    return {row["id"]: ContactState.from_row(row, known) for row, known in found}


def _owners(states: Iterable[ContactState], asked: Collection[Identity]) -> Owners:
    """Which of these contacts owns each identity ``asked`` (those nobody owns are absent)."""
    return {pair: s.id for s in states for pair in s.identities.items() if pair in asked}


def _add_missing(
    refs: Sequence[_Ref], owners: Owners, states: dict[str, ContactState], *, now: datetime
) -> list[ContactState]:
    """New states for the contacts named by an id that does not exist yet and one for each
    event nobody knows, owning its identities in ``owners`` (``_claim`` inserts them)."""
    created = []
    # A contact named by its id gets its identities later, like any contact we know.
    for ref in refs:
        if ref.id and ref.id not in states:
            states[ref.id] = ContactState.blank(ref.id, now, partition=ref.partition)
            created.append(states[ref.id])
    for ref in refs:
        if _known_id(ref, owners) is None:
            pairs = {k: v for k, v in ref.identities.items() if (k, v) not in owners}
            state = ContactState.blank(
                new_id("ct", now), now, partition=ref.partition, identities=pairs
            )
            states[state.id] = state
            created.append(state)
            owners.update(dict.fromkeys(pairs.items(), state.id))
    return created


async def _claim(
    session: AsyncSession,
    created: list[ContactState],
    owners: Owners,
    states: dict[str, ContactState],
    *,
    explicit: set[str],
    now: datetime,
) -> None:
    """Insert the new contacts as they are (blank) and claim their identities now. An identity
    a concurrent transaction claimed first belongs to its contact, found and adopted here; a
    new contact left without identities is deleted, and one named by an id (``explicit``) that
    a concurrent transaction created first is found instead."""
    rows = [{**s.row(now), "partition": s.partition} for s in created]
    inserted = await repo.insert_contacts(session, rows)
    wanted = [{"kind": k, "value": v, "contact_id": s.id} for s in created for k, v in s.claims]
    won = await repo.attach_identities(session, wanted)
    lost = {(r["kind"], r["value"]) for r in wanted} - won
    if lost:  # concurrent transactions claimed them first: their contacts are the owners
        winners = await _find(session, identities=lost)
        owners.update(_owners(winners.values(), lost))
        for contact_id, state in winners.items():
            states.setdefault(contact_id, state)
    orphans = {s.id for s in created if s.id not in explicit and s.id not in owners.values()}
    await repo.delete_contacts(session, orphans)
    for state in created:
        del states[state.id]
        if state.id in inserted and state.id not in orphans:
            state.identities = {k: v for k, v in state.identities.items() if (k, v) in won}
            states[state.id] = state
    # Named contacts a concurrent transaction created first.
    states.update(await _find(session, ids=explicit - states.keys()))


def _known_id(ref: _Ref, owners: Owners) -> str | None:
    if ref.id:
        return ref.id
    return next((owners[p] for p in ref.identities.items() if p in owners), None)


def _state_for(ref: _Ref, owners: Owners, states: dict[str, ContactState]) -> ContactState:
    state = states[_known_id(ref, owners) or ""]
    # An identity already owned by another contact stays with that contact.
    free = {
        k: v for k, v in ref.identities.items() if owners.setdefault((k, v), state.id) == state.id
    }
    state.absorb(ref.contact, identities=free)
    return state


def writes(states: Sequence[ContactState], *, now: datetime) -> list[Write]:
    """What writing these states back takes: the contacts whose columns changed updated, and
    the identities they gained attached (one a concurrent transaction attached to another
    contact first stays there)."""
    unique = sorted({id(s): s for s in states}.values(), key=lambda s: s.id)
    gained = [
        {"kind": k, "value": v, "contact_id": s.id}
        for s in unique
        for k, v in s.new_identities.items()
    ]
    return [
        repo.updated([s.row(now) for s in unique if s.changed]),
        repo.identities_attached(gained),
    ]


async def write_back(
    session: AsyncSession, states: Sequence[ContactState], *, now: datetime
) -> None:
    """Update stored contacts and attach the identities they gained (see ``writes``)."""
    await write_together(session, writes(states, now=now))
