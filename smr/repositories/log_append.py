"""Appending accepted events to the event log: the storage seam's two sides.

An append stores each new event (``events``, ``pending``) and its log entry (``event_log``)
together, skipping events whose (source, key) is stored already, and routes each entry to its
contact's partition when the contact is known (by its id or any identity), else to the
partition of the event's fallback route (``smr.eventlog``).

PostgreSQL: one asyncpg statement per append, whatever the number of events (asyncpg's
public API, on a pool of its own: accepting is the one path where a statement's overhead in
SQLAlchemy would cost more than the statement). SQLite: SQLAlchemy Core in one transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import insert, select, tuple_
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smr import jsontext
from smr.db import is_sqlite, unit_of_work
from smr.eventlog import EventStatus
from smr.models import Contact, ContactIdentity, Event, EventLogEntry, table_of
from smr.repositories._sql import insert_ignoring_conflicts, one_of


@dataclass(frozen=True)
class Appending:
    """An accepted event, ready to append: its stored columns and what routes it."""

    id: str
    key: str
    type: str
    occurred_at: datetime
    occurred_at_source: str
    contact: dict[str, Any]
    data: dict[str, Any]
    #: The route and partition when its contact is not known yet.
    route: str
    partition: int
    urgent: bool
    #: What finds its contact: an explicit id and the identities it carries.
    contact_id: str | None
    identities: dict[str, str]


class LogWriter(Protocol):
    async def append(
        self, events: Sequence[Appending], *, source: str, now: datetime
    ) -> dict[str, str]:
        """Append the events whose (``source``, key) is not stored yet; every event's key →
        the id of the stored event (a new one's own id, a repeat's first id).

        ``events`` carry distinct keys. Raises SQLAlchemy's or asyncpg's errors as they come.
        """
        ...

    async def aclose(self) -> None: ...


def log_writer(
    url: str, sessions: async_sessionmaker[AsyncSession], *, pool_size: int
) -> LogWriter:
    """The writer for the database at ``url`` (on PostgreSQL, with up to ``pool_size``
    connections of its own)."""
    if is_sqlite(url):
        return SessionLogWriter(sessions)
    dsn = make_url(url).set(drivername="postgresql").render_as_string(False)
    return AsyncpgLogWriter(dsn, max_size=pool_size)


class SessionLogWriter:
    """The SQLite side: three statements in one transaction (SQLite takes its writers in turn
    and is on this machine: a round trip costs little)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def append(
        self, events: Sequence[Appending], *, source: str, now: datetime
    ) -> dict[str, str]:
        async with unit_of_work(self._sessions) as session:
            return await append_in(session, events, source=source, now=now)

    async def aclose(self) -> None:
        return None


async def append_in(
    session: AsyncSession, events: Sequence[Appending], *, source: str, now: datetime
) -> dict[str, str]:
    """``LogWriter.append`` in the caller's transaction (the events commit with it)."""
    rows = [_event_row(e, source=source, now=now) for e in events]
    stmt = insert_ignoring_conflicts(session, table_of(Event))
    stored = await session.execute(stmt.returning(Event.id), rows)
    inserted = {row[0] for row in stored}
    fresh = [e for e in events if e.id in inserted]
    routes = await _known_routes(session, fresh)
    entries = []
    for e in fresh:
        partition, route = routes.get(e.id, (e.partition, e.route))
        entries.append(
            {
                "event_id": e.id,
                "partition": partition,
                "route": route,
                "urgent": e.urgent,
                "received_at": now,
            }
        )
    if entries:
        await session.execute(insert(EventLogEntry), entries)
    ids = {e.key: e.id for e in fresh}
    if len(ids) < len(events):
        ids.update(await stored_ids(session, source=source, keys=_missing(events, ids)))
    return ids


def _missing(events: Sequence[Appending], ids: dict[str, str]) -> list[str]:
    return [e.key for e in events if e.key not in ids]


def _event_row(event: Appending, *, source: str, now: datetime) -> dict[str, Any]:
    return {
        "id": event.id,
        "source": source,
        "key": event.key,
        "type": event.type,
        "occurred_at": event.occurred_at,
        "occurred_at_source": event.occurred_at_source,
        "received_at": now,
        "contact_id": None,
        "contact": event.contact,
        "data": event.data,
        "evaluations": [],
        "status": EventStatus.PENDING,
    }


async def _known_routes(
    session: AsyncSession, events: Sequence[Appending]
) -> dict[str, tuple[int, str]]:
    """Event id → (partition, contact id) for the events whose contact is stored."""
    ids = {e.contact_id for e in events if e.contact_id}
    pairs = {p for e in events for p in e.identities.items()}
    by_id: dict[str, tuple[int, str]] = {}
    if ids:
        found = await session.execute(
            select(Contact.id, Contact.partition).where(one_of(session, Contact.id, list(ids)))
        )
        by_id = {cid: (part, cid) for cid, part in found}
    by_identity: dict[tuple[str, str], tuple[int, str]] = {}
    if pairs:
        owned = await session.execute(
            select(ContactIdentity.kind, ContactIdentity.value, Contact.id, Contact.partition)
            .join(Contact, Contact.id == ContactIdentity.contact_id)
            .where(tuple_(ContactIdentity.kind, ContactIdentity.value).in_(list(pairs)))
        )
        by_identity = {(kind, value): (part, cid) for kind, value, cid, part in owned}
    routes: dict[str, tuple[int, str]] = {}
    for e in events:
        known = by_id.get(e.contact_id or "") or next(
            (by_identity[p] for p in e.identities.items() if p in by_identity), None
        )
        if known is not None:
            routes[e.id] = known
    return routes


async def stored_ids(session: AsyncSession, *, source: str, keys: list[str]) -> dict[str, str]:
    """Key → stored event id, for the keys of ``source`` that are stored."""
    found = await session.execute(
        select(Event.key, Event.id).where(Event.source == source, one_of(session, Event.key, keys))
    )
    return {row.key: row.id for row in found}


# The PostgreSQL side. The events come in (``input``), are inserted (a repeat's key conflicts:
# skipped), and the inserted ones' log entries take the partition and id of the contact found
# by the event's id or identities, if any. Several events come as one JSON array of rows
# (jsonb_to_recordset: one parameter to encode, where fourteen arrays cost asyncpg twice the
# CPU for the same rows, and PostgreSQL no more); one event as its values.
_MANY = """
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS t(
        id text, key text, type text, occurred_at timestamptz, occurred_at_source text,
        contact jsonb, data jsonb, route text, partition int2, urgent bool, contact_id text,
        phone text, wecom_userid text, shop_customer_id text, ord bigint
    )
"""
_ONE = """
    SELECT $1::text AS id, $2::text AS key, $3::text AS type, $4::timestamptz AS occurred_at,
        $5::text AS occurred_at_source, $6::jsonb AS contact, $7::jsonb AS data,
        $8::text AS route, $9::int2 AS partition, $10::bool AS urgent, $11::text AS contact_id,
        $12::text AS phone, $13::text AS wecom_userid, $14::text AS shop_customer_id,
        1::bigint AS ord
"""
# {source} and {now}: the parameters after the events'.
_REST = """), stored AS (
    INSERT INTO events (
        id, source, key, type, occurred_at, occurred_at_source, received_at, contact_id,
        contact, data, evaluations, status
    )
    SELECT id, {source}, key, type, occurred_at, occurred_at_source, {now}, NULL, contact, data,
           '[]'::jsonb, 'pending'
    FROM input ORDER BY ord
    ON CONFLICT (key, source) DO NOTHING
    RETURNING id
)
INSERT INTO event_log (event_id, partition, route, urgent, received_at)
SELECT input.id, coalesce(known.partition, input.partition), coalesce(known.id, input.route),
       input.urgent, {now}
FROM stored JOIN input ON input.id = stored.id
LEFT JOIN LATERAL (
    SELECT c.id, c.partition, 0 AS rank FROM contacts c WHERE c.id = input.contact_id
    UNION ALL
    SELECT c.id, c.partition, 1 AS rank
    FROM contact_identities i JOIN contacts c ON c.id = i.contact_id
    WHERE (i.kind = 'phone' AND i.value = input.phone)
       OR (i.kind = 'wecom_userid' AND i.value = input.wecom_userid)
       OR (i.kind = 'shop_customer_id' AND i.value = input.shop_customer_id)
    ORDER BY rank LIMIT 1
) known ON true
ORDER BY input.ord
RETURNING event_id
"""
_APPEND_MANY = "WITH input AS (" + _MANY + _REST.format(source="$2", now="$3")
_APPEND_ONE = "WITH input AS (" + _ONE + _REST.format(source="$15", now="$16")
_STORED = "SELECT key, id FROM events WHERE source = $1 AND key = ANY($2::text[])"


class AsyncpgLogWriter:
    """The PostgreSQL side: one statement per append on an asyncpg pool, opened at the first
    append (a process that never accepts, a worker, opens none)."""

    def __init__(self, dsn: str, *, max_size: int = 20) -> None:
        self._dsn = dsn
        self._max_size = max_size
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    def __repr__(self) -> str:
        return "AsyncpgLogWriter()"  # the DSN may hold a password

    async def _connections(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._opening:  # the first requests all wait for the one pool
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self._dsn,
                    min_size=1,
                    max_size=self._max_size,
                    server_settings={"application_name": "smr-accept"},
                )
            return self._pool

    async def append(
        self, events: Sequence[Appending], *, source: str, now: datetime
    ) -> dict[str, str]:
        pool = await self._connections()
        if len(events) == 1:
            statement, values = _APPEND_ONE, _values(events[0])
        else:
            statement, values = _APPEND_MANY, [_rows(events)]
        async with pool.acquire() as connection:
            rows = await connection.fetch(statement, *values, source, now)
            inserted: set[str] = {row[0] for row in rows}
            ids = {e.key: e.id for e in events if e.id in inserted}
            if len(ids) < len(events):
                found = await connection.fetch(_STORED, source, _missing(events, ids))
                ids.update({row[0]: row[1] for row in found})
        return ids

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


def _values(e: Appending) -> list[Any]:
    return [
        e.id,
        e.key,
        e.type,
        e.occurred_at,
        e.occurred_at_source,
        jsontext.dumps(e.contact),
        jsontext.dumps(e.data),
        e.route,
        e.partition,
        e.urgent,
        e.contact_id,
        e.identities.get("phone"),
        e.identities.get("wecom_userid"),
        e.identities.get("shop_customer_id"),
    ]


def _rows(events: Sequence[Appending]) -> str:
    """The events as the JSON array ``_MANY`` reads, in their order (``ord``)."""
    return jsontext.dumps(
        [
            {
                "id": e.id,
                "key": e.key,
                "type": e.type,
                "occurred_at": e.occurred_at.isoformat(),
                "occurred_at_source": e.occurred_at_source,
                "contact": e.contact,
                "data": e.data,
                "route": e.route,
                "partition": e.partition,
                "urgent": e.urgent,
                "contact_id": e.contact_id,
                "ord": position,
                **e.identities,
            }
            for position, e in enumerate(events)
        ]
    )
