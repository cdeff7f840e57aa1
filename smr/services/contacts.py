"""Contact resolution: which contact each event is about, found, created or merged."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from smr.ids import new_id
from smr.playbooks.context import GroupView
from smr.repositories import contacts as repo
from smr.repositories import group_reads
from smr.repositories._bulk import Write, write_together
from smr.schemas import ContactRef
from smr.services.contact_state import ContactState
from smr.subjects import ContactKind

__all__ = ["ContactState", "HasContact", "Merge", "Merger", "resolve"]

Identity = tuple[str, str]
Owners = dict[Identity, str]
#: How many merges deep a merged contact's id is followed to its survivor (each merge points
#: its tombstones at the new survivor, so one is enough unless merges race).
MAX_HOPS = 8


@dataclass(frozen=True)
class Merge:
    """A contact an event showed to be the same person as an older one."""

    survivor: ContactState
    merged: ContactState
    #: The identity kinds (or ``id``) that linked them, and the event that did (none for an
    #: import).
    by: Sequence[str]
    event_id: str | None


class Merger(Protocol):
    """Merges the contacts an event links (``smr.services.merging``)."""

    def links(self, kind: str) -> bool:
        """Whether an identity of ``kind`` held by another contact makes it the same person."""
        ...

    async def merge(
        self, session: AsyncSession, merges: Sequence[Merge], *, now: datetime
    ) -> None: ...


class HasContact(Protocol):
    """What ``resolve`` reads of an event: the contact it is about, and the event log
    partition a new contact made for it takes."""

    @property
    def contact(self) -> ContactRef: ...

    @property
    def partition(self) -> int: ...

    @property
    def id(self) -> str | None:
        """The event's id, for the merges it makes (none for an import)."""
        ...


async def resolve(
    session: AsyncSession,
    events: Sequence[HasContact],
    *,
    now: datetime,
    merger: Merger | None = None,
) -> list[ContactState]:
    """The contact of each event, by its explicit id or any identity; new contacts as needed.

    The known contacts are found and locked (PostgreSQL) with one query, so the events of one
    contact take turns. The contacts for the events nobody knows are inserted at once, blank,
    with the identities they claim; an identity a concurrent transaction claimed first
    (PostgreSQL waits for it to end) belongs to that transaction's contact, which is found,
    locked and used instead. So a customer whose first events arrive concurrently ends up as
    one contact. Contacts shared by several events are the same ContactState object, so
    changes made while handling one event are seen by the next; ``writes`` writes them back.

    A merged contact's id finds its survivor. With a ``merger``, the contacts an event links
    by identities of the kinds it ``links`` (or by its id and such an identity) are merged
    into the oldest of them first, and the event is about the survivor; an event is about
    the contact its linking identities find before the one its others find.
    """
    refs = [_Ref.of(e, merger) for e in events]
    asked = {pair for ref in refs for pair in ref.identities.items()}
    ids = {ref.id for ref in refs if ref.id}
    states = await _find(session, ids=ids, identities=asked)
    await _follow_merged(session, states)
    owners = _owners(states.values(), asked)
    created = _add_missing(refs, owners, states, now=now)
    if created:
        await _claim(session, created, owners, states, explicit=ids, now=now)
    if merger is not None:  # contacts created above included: a later event may link two
        await _merge_linked(session, refs, owners, states, merger, now=now)
    resolved = [_state_for(ref, owners, states) for ref in refs]
    await with_groups(session, resolved)
    return resolved


@dataclass(frozen=True)
class _Ref:
    """An event's contact, with its identities read once (those that link first)."""

    contact: ContactRef
    identities: dict[str, str]
    partition: int
    event_id: str | None

    @classmethod
    def of(cls, event: HasContact, merger: Merger | None) -> _Ref:
        pairs = list(event.contact.identities().items())
        if merger is not None:
            pairs.sort(key=lambda pair: not merger.links(pair[0]))
        return cls(event.contact, dict(pairs), event.partition, event.id)

    @property
    def id(self) -> str | None:
        return self.contact.id


async def _follow_merged(session: AsyncSession, states: dict[str, ContactState]) -> None:
    """Have each merged contact's id find its survivor (loaded and locked as it is now)."""
    for _ in range(MAX_HOPS):
        merged = {cid: s.merged_into for cid, s in states.items() if s.id == cid and s.merged_into}
        if not merged:
            return
        states.update(await _find(session, ids=set(merged.values()) - states.keys()))
        for cid, survivor in merged.items():
            states[cid] = states[survivor]


async def _merge_linked(
    session: AsyncSession,
    refs: Sequence[_Ref],
    owners: Owners,
    states: dict[str, ContactState],
    merger: Merger,
    *,
    now: datetime,
) -> None:
    """Merge the contacts each event links (see ``resolve``) into the oldest of them, all in
    one ``merger.merge``; ``states`` and ``owners`` name the survivors from then on."""
    merges = []
    for group, by, event_id in _linked_groups(refs, owners, states, merger):
        people = sorted((states[cid] for cid in group), key=lambda s: (s.created_at, s.id))
        merges += [Merge(people[0], merged, by, event_id) for merged in people[1:]]
    if not merges:
        return
    await merger.merge(session, merges, now=now)
    survivor_of = {id(m.merged): m.survivor for m in merges}
    for cid, state in list(states.items()):
        states[cid] = survivor_of.get(id(state), state)
    into = {m.merged.id: m.survivor.id for m in merges}
    for pair, owner in owners.items():
        owners[pair] = into.get(owner, owner)


def _linked_groups(
    refs: Sequence[_Ref], owners: Owners, states: dict[str, ContactState], merger: Merger
) -> list[tuple[set[str], list[str], str | None]]:
    """The sets of people the events link, each with the identity kinds that linked them and
    the first event that did, in the order of those events (a union-find: linear in the
    events, however many of them link people)."""
    parent: dict[str, str] = {}
    kinds: dict[str, set[str]] = {}
    first: dict[str, tuple[int, str | None]] = {}

    def root(cid: str) -> str:
        while parent[cid] != cid:
            parent[cid] = parent[parent[cid]]
            cid = parent[cid]
        return cid

    for index, ref in enumerate(refs):
        links = [
            (kind, states[cid].id)
            for kind, cid in _links(ref, owners, merger)
            if cid in states and states[cid].kind == ContactKind.PERSON
        ]
        linked = {cid for _, cid in links}
        if len(linked) < 2:
            continue
        for cid in linked - parent.keys():
            parent[cid], kinds[cid], first[cid] = cid, set(), (index, ref.event_id)
        roots = {root(cid) for cid in linked}
        top = min(roots, key=first.__getitem__)
        for other in roots - {top}:
            parent[other] = top
            kinds[top] |= kinds.pop(other)
            del first[other]
        kinds[top] |= {kind for kind, _ in links}
    members: dict[str, set[str]] = {}
    for cid in parent:
        members.setdefault(root(cid), set()).add(cid)
    ordered = sorted(members, key=first.__getitem__)
    return [(members[top], sorted(kinds[top]), first[top][1]) for top in ordered]


def _links(ref: _Ref, owners: Owners, merger: Merger) -> Iterable[tuple[str, str]]:
    """(kind, contact id) for the contacts ``ref`` names: by its id, and by each identity of
    a kind that links."""
    if ref.id:
        yield "id", ref.id
    for pair in ref.identities.items():
        if merger.links(pair[0]) and pair in owners:
            yield pair[0], owners[pair]


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
    owning = set(owners.values())  # a set: created contacts are many in a big batch
    orphans = {s.id for s in created if s.id not in explicit and s.id not in owning}
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
