"""The real pipeline (ingest, processor, cron, dispatcher) on a scratch database, in virtual time.

Nothing here touches the service's database or channels: the scratch SQLite database lives in a
temporary folder removed afterwards, and every channel is a stand-in that sends nothing.
"""

from __future__ import annotations

import tempfile
from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from smr.channels import (
    Capabilities,
    ChannelAdapter,
    OutboundMessage,
    SendError,
    SendResult,
    SkippedSend,
    capabilities_of,
)
from smr.config import Settings
from smr.db import create_engine, session_factory, unit_of_work
from smr.importing import ImportedContact, Line
from smr.models import Base
from smr.repositories import events as events_repo
from smr.repositories import metrics as metrics_repo
from smr.repositories import partitions as partitions_repo
from smr.repositories import segments as segments_repo
from smr.repositories import simulation as simulation_repo
from smr.repositories.log_append import SessionLogWriter
from smr.schemas import EventIn
from smr.services.accept import Acceptor, BacklogGauge
from smr.services.catalog import Catalog
from smr.services.cron import Cron
from smr.services.dispatch import Dispatcher
from smr.services.imports import import_lines
from smr.services.plan import INTERNAL_CHANNELS
from smr.services.processor import Processor
from smr.simulate.groups import sample_groups
from smr.simulate.timeline import Simulation, read_simulation
from smr.statuses import SkipReason
from smr.telemetry import Telemetry

SOURCE = "simulate"
#: Instants at most (each a time something happens); bounds a schedule firing every minute.
MAX_INSTANTS = 5000
#: Tick rounds at most within one instant (each round that did something asks for another).
MAX_ROUNDS = 50


class VirtualClock:
    """The simulation's time: moved forward by the loop, never by the wall clock."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


class SimulatedChannel:
    """Stands in for one channel: accepts each message at once and sends nothing, except where
    the channel's vendor could not reach the recipient (``Capabilities.needs``): that message is
    skipped with ``missing_identity``, as it would be in production."""

    name: ClassVar[str] = "simulated"

    def __init__(self, declared: Capabilities = Capabilities()) -> None:
        self.declared = declared

    @property
    def capabilities(self) -> Capabilities:
        # Always resendable: nothing is really sent, and a simulation never loses a worker.
        return replace(self.declared, idempotent=True)

    async def send(self, message: OutboundMessage) -> SendResult:
        if missing := self.declared.missing(message.recipient):
            names = ", ".join(missing)
            raise SkippedSend(
                SkipReason.MISSING_IDENTITY, response=f"simulated: no {names} to send to"
            )
        return SendResult(vendor_message_id=f"sim-{message.delivery_id}", response="simulated")

    async def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult | SendError]:
        answers: list[SendResult | SendError] = []
        for message in messages:
            try:
                answers.append(await self.send(message))
            except SendError as exc:
                answers.append(exc)
        return answers

    async def aclose(self) -> None:
        return None


async def simulate(
    catalog: Catalog,
    events: Sequence[EventIn],
    *,
    horizon: timedelta,
    settings: Settings,
    known: ImportedContact | None = None,
) -> Simulation:
    """Run ``events`` (the first one starts the clock) through ``catalog`` for ``horizon``.

    ``catalog`` must be the simulation's own (its version cache fills up); ``settings`` gives
    batch sizes and leases, never the database. ``known``: the customer as SMR knew them
    before the first event (tags, attributes, historical orders), imported first as
    ``smr import`` would: nothing of it triggers a playbook.
    """
    start = events[0].occurred_at
    with tempfile.TemporaryDirectory(prefix="smr-simulate-") as folder:
        pipeline = await _Pipeline.open(Path(folder), catalog, settings, start=start)
        try:
            if known is not None:
                await pipeline.know(known)
            contact_id, notes = await pipeline.run(events, until=start + horizon)
            async with pipeline.sessions() as session:
                return await read_simulation(
                    session,
                    catalog,
                    contact_id=contact_id,
                    start=start,
                    horizon=horizon,
                    notes=notes,
                )
        finally:
            await pipeline.engine.dispose()


@dataclass
class _Pipeline:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    clock: VirtualClock
    catalog: Catalog
    cron: Cron
    dispatcher: Dispatcher
    acceptor: Acceptor
    processor: Processor
    #: Cron has fired every slot up to here.
    cron_until: datetime
    merge_by: Collection[str]

    @classmethod
    async def open(
        cls, folder: Path, catalog: Catalog, settings: Settings, *, start: datetime
    ) -> _Pipeline:
        url = f"sqlite+aiosqlite:///{folder / 'simulation.db'}"
        engine = create_engine(url)
        event.listen(engine.sync_engine, "connect", _scratch_pragmas)
        async with engine.begin() as connection:  # the models equal the migrations (tested)
            await connection.run_sync(Base.metadata.create_all)
        sessions = session_factory(engine)
        clock = VirtualClock(start)
        async with unit_of_work(sessions) as session:
            await catalog.remember_versions(session, now=start)
            groups = sample_groups(catalog.result.playbooks.values())
            await simulation_repo.add_groups(session, groups, now=start)
            await partitions_repo.create(session)
            # The simulated customer's segment entries and exits start playbooks at once:
            # there is no earlier customer base to fill without posting.
            current = catalog.segments.current
            await segments_repo.mark_filled(
                session, {sid: s.version for sid, s in current.items()}, now=start
            )
        local = settings.model_copy(update={"database_url": url, "dispatch_lanes": 1})
        declared = capabilities_of(catalog.channels)
        routes: dict[str, ChannelAdapter] = {
            name: SimulatedChannel(declared.get(name, Capabilities()))
            for name in (*catalog.channels, *INTERNAL_CHANNELS)
        }
        cron = Cron(local, sessions=sessions, catalog=catalog, clock=clock)
        dispatcher = Dispatcher(
            sessions=sessions, routes=routes, catalog=catalog, settings=local, clock=clock
        )
        processor = Processor(
            sessions,
            catalog=catalog,
            settings=local.ingest,
            clock=clock,
            telemetry=Telemetry(),
            dispatcher=dispatcher,
            merge_by=local.merge_by,
        )
        acceptor = Acceptor(
            SessionLogWriter(sessions),
            gauge=BacklogGauge(sessions, bound=local.ingest.max_backlog, clock=clock),
            settings=local.ingest,
            clock=clock,
            on_accept=lambda: None,
        )
        return cls(
            engine,
            sessions,
            clock,
            catalog,
            cron,
            dispatcher,
            acceptor,
            processor,
            start,
            local.merge_by,
        )

    async def know(self, customer: ImportedContact) -> None:
        """Have the customer known before the simulation starts (see ``simulate``)."""
        line = Line(0, customer, customer.contact())
        await import_lines(
            self.sessions, [line], catalog=self.catalog, now=self.clock, merge_by=self.merge_by
        )

    async def run(self, events: Sequence[EventIn], *, until: datetime) -> tuple[str, list[str]]:
        """Ingest each event at its time and tick at every instant something falls due, up to
        ``until``; returns the first event's contact and notes on what was left out."""
        queue = deque(events)
        contact_id = ""
        for _ in range(MAX_INSTANTS):
            pending = None
            ingested = False
            while queue and queue[0].occurred_at <= self.clock.now:
                report = await self.acceptor.accept([queue.popleft()], source=SOURCE)
                await self.processor.drain()
                contact_id = contact_id or await self._contact_of(report.results[0].event_id)
                # Each event is handled before the next, like webhooks a moment apart.
                pending, ingested = await self._settle(), True
            if not ingested:
                pending = await self._settle()
            event_at = queue[0].occurred_at if queue else None
            following = _earliest(pending, event_at, self.cron.next_slot(self.clock.now))
            if following is None or following > until:
                return contact_id, _left_out(queue, until)
            self.clock.now = max(following, self.clock.now)
        notes = [f"stopped after {MAX_INSTANTS} moments; the timeline ends early"]
        return contact_id, notes + _left_out(queue, until)

    async def _contact_of(self, event_id: str) -> str:
        async with self.sessions() as session:
            event = await events_repo.get(session, event_id)
        return (event.contact_id if event else None) or ""

    async def _settle(self) -> datetime | None:
        """Tick until nothing is due at this instant (cron only when one of its slots is);
        returns when a run or delivery falls due next."""
        now = self.clock.now
        for _ in range(MAX_ROUNDS):
            slot = self.cron.next_slot(self.cron_until)
            if slot is not None and slot <= now:
                await self.cron.tick()
                self.cron_until = now
            async with self.sessions() as session:
                earliest = await metrics_repo.earliest_due(session)
            wake, due = earliest["runs"], earliest["deliveries"]
            if wake is not None and wake <= now:
                await self.processor.drain()
            elif due is not None and due <= now:
                await self.dispatcher.tick()
            else:
                break
        return _earliest(wake, due)


def _scratch_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # A scratch database is thrown away: durability buys nothing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=OFF")
    cursor.close()


def _earliest(*times: datetime | None) -> datetime | None:
    return min((t for t in times if t is not None), default=None)


def _left_out(queue: deque[EventIn], until: datetime) -> list[str]:
    return [
        f"event {e.id} ({e.type}) at {e.occurred_at.isoformat()} is after the simulated period "
        f"(ends {until.isoformat()}); not simulated"
        for e in queue
    ]
