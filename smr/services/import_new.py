"""An import's customers nobody knows yet, written set-based: most lines of a first import.

A line is new when none of its identities is held by a contact, none of its orders is stored,
and no other line of its chunk shares an identity or an order with it (those may be one
person: they take the path of events, ``smr.services.contacts.resolve``). A new line's
contact is made whole in memory (name, tags, attributes, its orders counted, its segments),
then the chunk's new contacts, identities and order events are inserted with one statement
per table: nothing is looked up, locked or written twice.

A concurrent writer (an event, another import) may claim one of those identities or orders
between the look-up and the insert. The lines it raced are taken out again (their contacts,
identities and events deleted, in the same transaction) and go the path of events, which
finds the winner.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from smr.eventlog import route_of
from smr.ids import new_id
from smr.importing import Line
from smr.repositories import contacts as contacts_repo
from smr.repositories import events as events_repo
from smr.services import imported_orders, segments
from smr.services.catalog import Catalog
from smr.services.contact_state import ContactState
from smr.services.imported_orders import SOURCE


@dataclass(frozen=True)
class Created:
    """What inserting the new lines did."""

    contacts: list[ContactState]
    orders: int
    #: Lines a concurrent writer raced: they take the path of events.
    raced: list[Line]


async def split(session: AsyncSession, lines: Sequence[Line]) -> tuple[list[Line], list[Line]]:
    """The lines that are new (see the module's docstring), and the others."""
    held_by = [list(line.contact.identities().items()) for line in lines]
    identities = Counter(pair for pairs in held_by for pair in pairs)
    orders = Counter(order.key for line in lines for order in line.row.orders)
    held = await contacts_repo.owners_of(session, identities)
    stored = await events_repo.existing(session, source=SOURCE, keys=orders)
    new: list[Line] = []
    known: list[Line] = []
    for line, pairs in zip(lines, held_by, strict=True):
        alone = all(identities[p] == 1 and p not in held for p in pairs) and all(
            orders[o.key] == 1 and o.key not in stored for o in line.row.orders
        )
        (new if alone else known).append(line)
    return new, known


async def create(
    session: AsyncSession, lines: Sequence[Line], *, catalog: Catalog, now: datetime
) -> Created:
    """Insert a contact for each new line, whole, with its identities and orders."""
    states = [_state(line, now) for line in lines]
    owned = [(s, order) for s, line in zip(states, lines, strict=True) for order in line.row.orders]
    imported_orders.count(owned, catalog.policies)
    moves = segments.reassess(states, catalog, now=now, filled={})  # never posted
    await contacts_repo.insert_contacts(
        session, [{**s.row(now), "partition": s.partition} for s in states]
    )
    claims = [{"kind": k, "value": v, "contact_id": s.id} for s in states for k, v in s.claims]
    won = await contacts_repo.attach_identities(session, claims)
    rows = [imported_orders.event_row(order, s, now=now) for s, order in owned]
    stored = await events_repo.insert_imported(session, rows)
    raced = {
        s.id
        for s, line in zip(states, lines, strict=True)
        if not won.issuperset(s.claims) or not stored.issuperset(o.key for o in line.row.orders)
    }
    if raced:
        await contacts_repo.discard_new(session, raced)
    moves.entered = [m for m in moves.entered if m.contact_id not in raced]
    await segments.write(session, moves, now=now)
    return Created(
        contacts=[s for s in states if s.id not in raced],
        orders=sum(1 for s, _ in owned if s.id not in raced),
        raced=[line for s, line in zip(states, lines, strict=True) if s.id in raced],
    )


def _state(line: Line, now: datetime) -> ContactState:
    identities = line.contact.identities()
    state = ContactState.blank(
        new_id("ct", now),
        now,
        partition=route_of(None, identities)[1],
        identities=identities,
    )
    state.absorb(line.contact, identities={})
    state.tags = list(dict.fromkeys(line.row.tags))
    return state
