"""Everything a running SMR process holds, built once from Settings."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, cast

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from smr.channel_codes.annotate import annotate
from smr.channels import ChannelAdapter, ContactDirectory, ContactProfile, SendError
from smr.config import Settings
from smr.db import create_engine, log_failure, one_writer_at_a_time, session_factory, unit_of_work
from smr.repositories.log_append import LogWriter, log_writer
from smr.schemas import EventIn
from smr.services.accept import Acceptor, BacklogGauge, IngestReport
from smr.services.awaiting import Checker
from smr.services.catalog import Catalog, ReloadReport
from smr.services.channel_code_sync import ChannelCodeKeeper
from smr.services.cron import Cron
from smr.services.dispatch import Dispatcher
from smr.services.group_sync import GroupSync
from smr.services.group_welcome import GroupWelcomeKeeper, declared_in
from smr.services.moments import MomentEngagementPoll
from smr.services.processor import Processor
from smr.services.retention import Pruner
from smr.services.segments import Refresher
from smr.telemetry import Telemetry
from smr.tokens import Tokens, load_tokens

log = logging.getLogger(__name__)
#: How long a callback waits for WeCom's customer details before going on without them.
PROFILE_TIMEOUT_SECONDS = 1.5
Clock = Callable[[], datetime]
Ingest = Callable[[list[EventIn]], Awaitable[None]]


class InboundPuller(Protocol):
    """A channel adapter that also pulls inbound messages (WeCom kf/sync_msg)."""

    async def pull(self, *, token: str, open_kfid: str, ingest: Ingest) -> int: ...


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    catalog: Catalog
    routes: dict[str, ChannelAdapter]
    dispatcher: Dispatcher
    tokens: Tokens
    cron: Cron
    checker: Checker
    clock: Clock
    #: Appends accepted events to the log.
    acceptor: Acceptor
    #: Takes events from the log and processes them (in the background once ``Ticker`` runs).
    processor: Processor
    writer: LogWriter
    gauge: BacklogGauge
    #: This process's own measurements (latencies, sends, the ticker's heartbeat).
    telemetry: Telemetry = field(default_factory=Telemetry)
    #: Customer groups kept in step with WeCom (the daily sync, the callbacks' fetches).
    groups: GroupSync | None = None
    #: The declared channel codes (渠道活码) kept in step with WeCom, in the background.
    channel_codes: ChannelCodeKeeper | None = None
    #: The playbooks' group welcome templates kept in step with WeCom, in the background.
    group_welcome: GroupWelcomeKeeper | None = None
    #: Likes and comments on the corp's Moments, polled every half hour as events.
    moments: MomentEngagementPoll | None = None
    #: Rows past their retention, pruned every hour.
    pruner: Pruner | None = None
    #: Every customer's segments evaluated again: hourly, and when a definition changes.
    segments: Refresher | None = None
    _watch: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    _reloading: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)
    _pulls: set[asyncio.Task[None]] = field(default_factory=set, init=False, repr=False)
    _versions_stored: bool = field(default=False, init=False, repr=False)

    def describe_routes(self) -> dict[str, str]:
        return {channel: adapter.name for channel, adapter in sorted(self.routes.items())}

    async def ingest(
        self,
        events: list[EventIn],
        *,
        source: str,
        bounded: bool = True,
        received: frozenset[int] = frozenset(),
    ) -> IngestReport:
        """Accept events from ``source`` into the log (see ``Acceptor.accept``); the processor
        of this process, if it runs, looks at once."""
        events = annotate(events, self.catalog.channel_codes.current)  # data.channel_code
        return await self.acceptor.accept(events, source=source, bounded=bounded, received=received)

    async def process_pending(self) -> int:
        """Process the events waiting in the log and advance the runs due, here and now (the
        processor's ``drain``); how many events were processed."""
        return (await self.processor.drain()).events

    def pull_kf(self, *, token: str, open_kfid: str) -> bool:
        """Pull the 微信客服 messages a callback announced, in the background (the callback
        must be answered within 5 s); False when no configured channel can pull them."""
        puller = self.routes.get("wecom_kf")
        if not hasattr(puller, "pull"):
            return False
        pulling = self._pull(cast(InboundPuller, puller), token=token, open_kfid=open_kfid)
        task = asyncio.create_task(pulling, name=f"kf-pull-{open_kfid}")
        self._pulls.add(task)
        task.add_done_callback(self._pulls.discard)
        return True

    async def _pull(self, puller: InboundPuller, *, token: str, open_kfid: str) -> None:
        async def ingest(events: list[EventIn]) -> None:
            # Not refused for the backlog: the pull's cursor has moved past them.
            await self.ingest(events, source="wecom", bounded=False)

        try:
            made = await puller.pull(token=token, open_kfid=open_kfid, ingest=ingest)
        except Exception:  # the next callback pulls again from the stored cursor
            log.exception("wecom kf: pulling messages for %s failed", open_kfid)
        else:
            log.info("wecom kf: %d messages pulled for %s", made, open_kfid)

    async def contact_profile(
        self, *, external_userid: str, staff: str | None
    ) -> ContactProfile | None:
        """The customer's details from WeCom, when its contact API is configured; None when
        it is not, or does not answer in time (the event then goes on without them)."""
        directory = self.routes.get("wecom_welcome")
        if not hasattr(directory, "profile"):
            return None
        lookup = cast(ContactDirectory, directory).profile(
            external_userid=external_userid, staff=staff
        )
        try:
            return await asyncio.wait_for(lookup, PROFILE_TIMEOUT_SECONDS)
        except (SendError, TimeoutError) as exc:
            log.warning("wecom: no details of customer %s: %s", external_userid, exc)
            return None

    async def settle(self) -> None:
        """Wait for the kf pulls and group fetches started in the background."""
        while self._pulls:
            await asyncio.gather(*self._pulls)
        if self.groups is not None:
            await self.groups.settle()
        if self.moments is not None:
            await self.moments.settle()
        if self.pruner is not None:
            await self.pruner.settle()
        if self.segments is not None:
            await self.segments.settle()

    async def start(self) -> None:
        """Store the loaded playbook versions (runs refer to them by content hash) and start
        watching the playbooks folder."""
        await self._remember_versions()
        if self.channel_codes is not None:
            self.channel_codes.kick()
        if self.group_welcome is not None:
            self.group_welcome.kick()
        if self.settings.playbooks_poll_seconds > 0 and self._watch is None:
            self._watch = asyncio.create_task(self._watch_playbooks(), name="playbooks-watch")

    async def reload_playbooks(self) -> ReloadReport:
        """Load the playbooks folder again; runs in flight keep the version they started with."""
        async with self._reloading:
            # Reading and compiling happen off the event loop; switching over happens on it.
            report = self.catalog.apply(*await asyncio.to_thread(self.catalog.read))
            await self._remember_versions()
        if self.channel_codes is not None:
            self.channel_codes.kick()
        if self.group_welcome is not None:
            self.group_welcome.kick()
        if report.added or report.changed or report.removed:
            log.info(
                "playbooks reloaded: added %s, changed %s, removed %s, kept last good %s",
                report.added,
                report.changed,
                report.removed,
                report.kept,
            )
        return report

    async def _remember_versions(self) -> None:
        self._versions_stored = False
        async with unit_of_work(self.sessions) as session:
            await self.catalog.remember_versions(session, now=self.clock())
        self._versions_stored = True

    async def _watch_playbooks(self) -> None:
        while True:
            await asyncio.sleep(self.settings.playbooks_poll_seconds)
            try:
                if self.catalog.changed_on_disk():
                    await self.reload_playbooks()
                elif not self._versions_stored:  # the database was gone at the last reload
                    await self._remember_versions()
            except Exception as exc:  # a failed reload keeps the current playbooks; try again later
                log_failure(log, "playbook reload", exc)

    async def tick(self) -> None:
        """One scheduler tick: fire due cron slots, have the processor advance the due runs,
        send due deliveries, then check on deliveries a vendor accepted but has not delivered
        yet. A process whose processor does not run in the background (no ``Ticker``)
        processes the pending events and advances the due runs here, before and after the
        cron fan-out. A tick does not kick a background processor unless the fan-out started
        runs: a kick per tick, and a tick per batch that made deliveries due, would have it
        work in small batches."""
        with self.telemetry.ticking(self.clock):
            if not self.processor.in_background:
                await self.processor.drain()
            fanned_out = (await self.cron.tick()).runs_started
            if not self.processor.in_background:
                await self.processor.drain()
            elif fanned_out:
                self.processor.kick()  # otherwise its idle poll finds runs coming due
            await self.dispatcher.tick()
            await self.checker.tick()
            if self.channel_codes is not None:
                self.channel_codes.tick()  # starts a background pass when a retry is due
            if self.group_welcome is not None:
                self.group_welcome.tick()  # likewise
            if self.groups is not None:
                await self.groups.tick()  # never raises
            if self.moments is not None:
                await self.moments.tick()  # never raises
            if self.pruner is not None:
                await self.pruner.tick()  # never raises
            if self.segments is not None:
                await self.segments.tick()  # never raises

    async def aclose(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        if self.groups is not None:
            await self.groups.aclose()
        if self.channel_codes is not None:
            await self.channel_codes.aclose()
        if self.group_welcome is not None:
            await self.group_welcome.aclose()
        if self.moments is not None:
            await self.moments.aclose()
        if self.pruner is not None:
            await self.pruner.aclose()
        if self.segments is not None:
            await self.segments.aclose()
        await self.processor.aclose()
        await self.settle()
        await self.writer.aclose()
        for adapter in {id(a): a for a in self.routes.values()}.values():
            await adapter.aclose()
        await self.engine.dispose()


def build_runtime(
    settings: Settings, *, clock: Clock = system_clock, generate_tokens: bool = False
) -> Runtime:
    """Wire engine, catalog, channels and dispatcher; loads the playbooks once."""
    from adapters import PLAYBOOK_CHANNELS, build_routes  # the one lookup into adapters
    from adapters.wecom.contact_ways import build_contact_ways
    from adapters.wecom.groups import build_group_source
    from adapters.wecom.moment_engagement import build_moment_records
    from adapters.wecom.welcome_templates import build_welcome_templates

    engine = create_engine(settings.effective_database_url)
    sessions = session_factory(engine)
    catalog = Catalog(settings.playbooks_dir, PLAYBOOK_CHANNELS)
    catalog.reload()
    routes = build_routes(settings, sessions=sessions, clock=clock)
    telemetry = Telemetry()
    dispatcher = Dispatcher(
        sessions=sessions,
        routes=routes,
        catalog=catalog,
        settings=settings,
        clock=clock,
        telemetry=telemetry,
    )
    tokens = load_tokens(settings, generate=generate_tokens)
    cron = Cron(settings, sessions=sessions, catalog=catalog, clock=clock)
    checker = Checker(
        sessions=sessions, routes=routes, settings=settings, clock=clock, catalog=catalog
    )
    writer = log_writer(
        settings.effective_database_url, sessions, pool_size=settings.ingest.pool_size
    )
    gauge = BacklogGauge(sessions, bound=settings.ingest.max_backlog, clock=clock)
    processor = Processor(
        sessions,
        catalog=catalog,
        settings=settings.ingest,
        clock=clock,
        telemetry=telemetry,
        dispatcher=dispatcher,
        lanes=1 if one_writer_at_a_time(settings.effective_database_url) else settings.ingest.lanes,
        merge_by=settings.merge_by,
    )
    acceptor = Acceptor(
        writer,
        gauge=gauge,
        settings=settings.ingest,
        clock=clock,
        on_accept=lambda: processor.kick(),
    )
    groups = GroupSync(build_group_source(settings.wecom), sessions=sessions, clock=clock)
    ways = build_contact_ways(settings.wecom)
    codes = ChannelCodeKeeper(
        sessions=sessions, declared=catalog.channel_codes, ways=ways, clock=clock
    )
    runtime = Runtime(
        settings,
        engine,
        sessions,
        catalog,
        routes,
        dispatcher,
        tokens,
        cron,
        checker,
        clock,
        acceptor,
        processor,
        writer,
        gauge,
        telemetry=telemetry,
        groups=groups,
        channel_codes=codes,
        pruner=Pruner(settings.retention, sessions=sessions, clock=clock),
        segments=Refresher(
            catalog=catalog, sessions=sessions, clock=clock, batch_size=settings.batch_size
        ),
    )
    runtime.moments = MomentEngagementPoll(
        build_moment_records(settings.wecom),
        sessions=sessions,
        clock=clock,
        ingest=functools.partial(runtime.ingest, source="wecom"),
        days=settings.wecom.moment_engagement_days,
    )
    runtime.group_welcome = GroupWelcomeKeeper(
        sessions=sessions,
        declared=declared_in(catalog),
        templates=build_welcome_templates(
            settings.wecom, sessions=sessions, clock=clock, playbooks_dir=catalog.directory
        ),
        clock=clock,
    )
    return runtime


#: Allocations between collections of the youngest generation (CPython's default: 700), and
#: collections of each generation between collections of the next (10, 10). A request
#: allocates thousands of objects, nearly all freed by reference counting as it ends; at 700
#: the collector ran several times per request, each time walking what the requests in
#: flight held: about 3 % of the API's instructions on single events, and too little to
#: measure at these thresholds.
COLLECTOR_THRESHOLDS = (50_000, 20, 10)


def settle_heap() -> None:
    """Tune the garbage collector for a started, long-running process.

    Loaded playbooks, compiled templates and statements, SQLAlchemy's and pydantic's own
    structures are well over a hundred thousand objects that live as long as the process. Every
    full collection walked all of them again: about a tenth of the API's CPU under load, and
    pauses in its slowest answers. They are frozen, out of the collector's work, and the
    collector runs less often (``COLLECTOR_THRESHOLDS``). Called once, when the process has
    started.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)
