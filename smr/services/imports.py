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

import logging
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smr.db import is_transient, unit_of_work
from smr.eventlog import route_of
from smr.importing import Line, LineError
from smr.repositories import events as events_repo
from smr.repositories._bulk import write_together
from smr.schemas import ContactRef
from smr.services import contacts, import_new, segments
from smr.services.catalog import Catalog
from smr.services.contact_state import ContactState
from smr.services.imported_orders import Owned, count, event_row
from smr.services.merging import Merger

log = logging.getLogger(__name__)

#: Lines per transaction.
CHUNK = 2000
#: Tries of a chunk that meets a deadlock or a serialization failure.
RETRIES = 5


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

    def add(self, other: Imported) -> None:
        """Count ``other`` in too (a chunk's, or another process's)."""
        for name in (
            "lines",
            "created",
            "updated",
            "unchanged",
            "merged",
            "orders",
            "orders_known",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors += other.errors


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
    ``Imported.errors``. ``progress`` is told after each chunk.

    A chunk that meets a deadlock or a serialization failure (another import, or events,
    changing the same customers at once) is tried again, up to ``RETRIES`` times."""
    done = Imported()
    iterator = iter(lines)
    while batch := list(islice(iterator, chunk)):
        good = [line for line in batch if isinstance(line, Line)]
        errors = [line for line in batch if isinstance(line, LineError)]
        done.add(Imported(lines=len(batch), errors=errors))
        if good:
            done.add(await _retried(sessions, good, catalog=catalog, now=now, merge_by=merge_by))
        if progress is not None:
            progress(done)
    return done


async def _retried(
    sessions: async_sessionmaker[AsyncSession],
    lines: list[Line],
    *,
    catalog: Catalog,
    now: Callable[[], datetime],
    merge_by: Collection[str],
) -> Imported:
    """What importing ``lines`` in one transaction did, tried again after a transient
    failure (``RETRIES`` tries in all)."""
    for attempt in range(1, RETRIES):
        try:
            return await _once(sessions, lines, catalog=catalog, now=now(), merge_by=merge_by)
        except DBAPIError as exc:
            if not is_transient(exc):
                raise
            log.info("an import chunk met a transient failure (try %d): %s", attempt, exc)
    return await _once(sessions, lines, catalog=catalog, now=now(), merge_by=merge_by)


async def _once(
    sessions: async_sessionmaker[AsyncSession],
    lines: list[Line],
    *,
    catalog: Catalog,
    now: datetime,
    merge_by: Collection[str],
) -> Imported:
    done = Imported()
    merger = Merger(by=merge_by, catalog=catalog)
    async with unit_of_work(sessions) as session:
        await _import(session, lines, done, catalog=catalog, merger=merger, now=now)
    done.merged = merger.merges
    return done


async def _import(
    session: AsyncSession,
    lines: list[Line],
    done: Imported,
    *,
    catalog: Catalog,
    merger: Merger,
    now: datetime,
) -> None:
    """New customers set-based (``smr.services.import_new``), the others as events' are."""
    new, known = await import_new.split(session, lines)
    if new:
        created = await import_new.create(session, new, catalog=catalog, now=now)
        done.created += len(created.contacts)
        done.orders += created.orders
        known += created.raced
    if known:
        await _import_known(session, known, done, catalog=catalog, merger=merger, now=now)


async def _import_known(
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
    customers' stats and purchase history."""
    wanted = [
        (state, order)
        for line, state in zip(lines, states, strict=True)
        if not state.gone
        for order in line.row.orders
    ]
    first: dict[str, Owned] = {}
    for state, order in wanted:
        first.setdefault(order.key, (state, order))
    rows = [event_row(order, state, now=now) for state, order in first.values()]
    stored = await events_repo.insert_imported(session, rows)
    counted = [pair for key, pair in first.items() if key in stored]
    count(counted, catalog.policies)
    done.orders += len(counted)
    done.orders_known += len(wanted) - len(counted)
