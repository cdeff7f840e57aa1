"""Importing customers and their history (``smr import``, ``POST /v1/contacts/import``).

Each chunk of lines is one transaction: the customers are resolved as events' contacts are
(by any identity, new ones created, contacts a line links merged as in
``smr.services.merging``), their names, tags and attributes taken, their historical orders
stored as processed events of source ``import`` and counted in stats and purchase history, and
their segments evaluated. **Nothing is triggered**: no playbook is evaluated, no run started,
no segment entry posted. An import never messages anyone.

Run again, an import changes nothing: identities find the same contacts, tags and attributes
are already there, and an order's event (source ``import``, key ``paid:<order_id>``) is
stored once, so it is counted once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smr.db import unit_of_work
from smr.eventlog import EventStatus, route_of
from smr.ids import new_id
from smr.importing import ImportedOrder, Line, LineError
from smr.repositories import events as events_repo
from smr.repositories._bulk import write_together
from smr.schemas import ContactRef, OrderData
from smr.services import contacts, segments
from smr.services.catalog import Catalog
from smr.services.contact_state import ContactState
from smr.services.merging import Merger

SOURCE = "import"
#: Lines per transaction.
CHUNK = 2000
#: What an imported order's event says in the run log instead of evaluations.
IMPORTED_NOTE = {"imported": True, "note": "historical order: counted, no playbook evaluated"}


@dataclass
class Imported:
    """What an import did."""

    lines: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    merged: int = 0
    orders: int = 0
    #: Orders stored by an earlier import (or twice in the file): counted once.
    orders_known: int = 0
    errors: list[LineError] = field(default_factory=list)


@dataclass(frozen=True)
class _Row:
    """A line as ``contacts.resolve`` reads an event."""

    contact: ContactRef
    partition: int
    id: str | None = None


async def import_lines(
    sessions: async_sessionmaker[AsyncSession],
    lines: Iterable[Line | LineError],
    *,
    catalog: Catalog,
    now: Callable[[], datetime],
    merge_by: Collection[str],
    chunk: int = CHUNK,
    progress: Callable[[Imported], None] | None = None,
) -> Imported:
    """Import the good ``lines`` a chunk per transaction; the bad ones are reported in
    ``Imported.errors``. ``progress`` is told after each chunk."""
    done = Imported()
    merger = Merger(by=merge_by, catalog=catalog)
    async for good in _chunks(lines, done, size=chunk):
        async with unit_of_work(sessions) as session:
            await _import(session, good, done, catalog=catalog, merger=merger, now=now())
        done.merged = merger.merges
        if progress is not None:
            progress(done)
    return done


async def _chunks(
    lines: Iterable[Line | LineError], done: Imported, *, size: int
) -> AsyncIterator[list[Line]]:
    iterator = iter(lines)
    while batch := list(islice(iterator, size)):
        done.lines += len(batch)
        done.errors += [line for line in batch if isinstance(line, LineError)]
        good = [line for line in batch if isinstance(line, Line)]
        if good:
            yield good


async def _import(
    session: AsyncSession,
    lines: list[Line],
    done: Imported,
    *,
    catalog: Catalog,
    merger: Merger,
    now: datetime,
) -> None:
    rows = [_Row(line.contact, _partition(line.contact)) for line in lines]
    states = await contacts.resolve(session, rows, now=now, merger=merger)
    for line, state in zip(lines, states, strict=True):
        if not state.gone:
            fresh = [t for t in dict.fromkeys(line.row.tags) if t not in state.tags]
            state.tags = state.tags + fresh
    await _orders(session, lines, states, catalog=catalog, now=now, done=done)
    moves = segments.reassess(states, catalog, now=now, filled={})  # never posted
    unique = list({id(s): s for s in states}.values())
    changed = [s.changed for s in unique]  # each a comparison of every column: once
    done.created += sum(s.is_new for s in unique)
    done.updated += sum(c and not s.is_new for s, c in zip(unique, changed, strict=True))
    done.unchanged += sum(not c and not s.is_new for s, c in zip(unique, changed, strict=True))
    await write_together(session, contacts.writes(states, now=now))
    await segments.write(session, moves, now=now)


def _partition(contact: ContactRef) -> int:
    """A new contact's event log partition, as its first event's would be."""
    return route_of(None, contact.identities())[1]


async def _orders(
    session: AsyncSession,
    lines: list[Line],
    states: list[ContactState],
    *,
    catalog: Catalog,
    now: datetime,
    done: Imported,
) -> None:
    """Store the lines' orders as processed events; count those stored now in their
    customers' stats and purchase history, in the order they happened."""
    wanted = [
        (state, order)
        for line, state in zip(lines, states, strict=True)
        if not state.gone
        for order in line.row.orders
    ]
    first: dict[str, tuple[ContactState, ImportedOrder]] = {}
    for state, order in wanted:
        first.setdefault(order.key, (state, order))
    rows = [_event(order, state, now=now) for state, order in first.values()]
    stored = await events_repo.insert_imported(session, rows)
    policies = catalog.policies
    counted = sorted(
        (pair for key, pair in first.items() if key in stored),
        key=lambda pair: pair[1].occurred_at,
    )
    for state, order in counted:
        month = order.occurred_at.astimezone(policies.tz).strftime("%Y-%m")
        # Validated as an ImportedOrder already: the same fields, built without a second pass.
        data = OrderData.model_construct(
            order_id=order.order_id, total=order.total, currency=order.currency, items=order.items
        )
        state.apply_order(
            order.event_type,
            data,
            order.occurred_at,
            month=month,
            cycles=policies.use_cycle_days,
        )
        state.seen(order.event_type, order.occurred_at)
    done.orders += len(counted)
    done.orders_known += len(wanted) - len(counted)


def _event(order: ImportedOrder, state: ContactState, *, now: datetime) -> dict[str, Any]:
    return {
        "id": new_id("ev", now),
        "source": SOURCE,
        "key": order.key,
        "type": order.event_type,
        "occurred_at": order.occurred_at,
        "occurred_at_source": "sent",
        "received_at": now,
        "contact_id": state.id,
        "contact": {"id": state.id},
        "data": order.data(),
        "evaluations": [IMPORTED_NOTE],
        "status": EventStatus.PROCESSED,
        "processed_at": now,
    }
