"""Accepting events: validated (by the caller), deduplicated and appended to the event log.

Nothing else happens before the answer: the processors (``smr.services.processor``) resolve
contacts and evaluate playbooks afterwards, in order per contact. While more events wait than
``SMR_INGEST__MAX_BACKLOG``, accepting refuses with 429 and stores nothing.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smr import logs
from smr.config import IngestSettings
from smr.errors import Backlogged
from smr.eventlog import URGENT_TYPES, Backlog, route_of
from smr.ids import new_id
from smr.repositories import event_log
from smr.repositories.log_append import Appending, LogWriter
from smr.schemas import EventIn

#: How long a reading of the backlog serves the gate before it is read again.
BACKLOG_READ_SECONDS = 1.0


@dataclass(frozen=True)
class IngestResult:
    key: str
    status: Literal["accepted", "duplicate"]
    event_id: str

    def as_json(self) -> dict[str, Any]:
        return {"id": self.key, "status": self.status, "event_id": self.event_id}


@dataclass(frozen=True)
class IngestReport:
    results: list[IngestResult]

    @property
    def accepted(self) -> int:
        return sum(r.status == "accepted" for r in self.results)


class BacklogGauge:
    """The log's backlog as last read, read again at most once a second (by one caller at a
    time) so that the gate costs requests nothing, plus what this process appended since."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        bound: int,
        clock: Callable[[], datetime],
    ) -> None:
        self._sessions = sessions
        self._bound = bound
        self._clock = clock
        self._read_at = -math.inf
        self._reading: asyncio.Task[Backlog] | None = None
        self._appended = 0
        self.last = Backlog(size=0, lag_seconds=0.0)

    def appended(self, count: int) -> None:
        """This process appended ``count`` events."""
        self._appended += count

    async def size(self) -> int:
        if time.monotonic() - self._read_at >= BACKLOG_READ_SECONDS:
            if self._reading is None or self._reading.done():
                self._reading = asyncio.create_task(self._read())
            self.last = await asyncio.shield(self._reading)
        return self.last.size + self._appended

    def forget(self) -> None:
        """Read the backlog again at the next ``current``."""
        self._read_at = -math.inf

    async def _read(self) -> Backlog:
        appended = self._appended
        async with self._sessions() as session:
            backlog = await event_log.backlog(session, bound=self._bound, now=self._clock())
        self._appended -= appended  # counted in what was read
        self._read_at = time.monotonic()
        return backlog


class Acceptor:
    def __init__(
        self,
        writer: LogWriter,
        *,
        gauge: BacklogGauge,
        settings: IngestSettings,
        clock: Callable[[], datetime],
        on_accept: Callable[[], None],
    ) -> None:
        self._writer = writer
        self._gauge = gauge
        self._settings = settings
        self._clock = clock
        #: Called after an append that stored an event (the local processor's kick).
        self._on_accept = on_accept

    async def accept(
        self,
        events: Sequence[EventIn],
        *,
        source: str,
        bounded: bool = True,
        received: frozenset[int] = frozenset(),
    ) -> IngestReport:
        """Append the events not stored yet; repeats (stored before, or twice in ``events``)
        are ``duplicate``. ``bounded``: refuse with Backlogged while the backlog is over its
        bound (callbacks whose sender will not retry pass False). ``received``: the positions
        of events whose ``occurred_at`` is when they were received (``schemas.Posted``).
        """
        if bounded:
            await self._gate()
        now = self._clock()
        fresh: dict[str, Appending] = {}
        for position, event in enumerate(events):
            if event.id not in fresh:
                fresh[event.id] = _appending(event, now=now, received=position in received)
        ids = await self._writer.append(list(fresh.values()), source=source, now=now)
        results, seen = [], set()
        for event in events:
            mine = fresh[event.id].id == ids[event.id] and event.id not in seen
            seen.add(event.id)
            results.append(
                IngestResult(event.id, "accepted" if mine else "duplicate", ids[event.id])
            )
        logs.note_events([r.event_id for r in results])
        if accepted := sum(r.status == "accepted" for r in results):
            self._gauge.appended(accepted)
            self._on_accept()
        return IngestReport(results)

    async def _gate(self) -> None:
        if await self._gauge.size() > self._settings.max_backlog:
            # Long enough for the processors to work off a tenth of the bound at 1,000/s.
            retry = max(1, min(60, self._settings.max_backlog // 10_000))
            raise Backlogged(retry_after=retry)


def _appending(event: EventIn, *, now: datetime, received: bool) -> Appending:
    identities = event.contact.identities()
    route, partition = route_of(event.contact.id, identities)
    return Appending(
        id=new_id("ev", now),
        key=event.id,
        type=event.type,
        occurred_at=event.occurred_at,
        occurred_at_source="received" if received else "sent",
        contact=event.contact.model_dump(exclude_defaults=True),
        data=event.data,
        route=route,
        partition=partition,
        urgent=event.type in URGENT_TYPES,
        contact_id=event.contact.id,
        identities=identities,
    )
