"""Everything a running SMR process holds, built once from Settings."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from smr.channels import ChannelAdapter
from smr.config import Settings
from smr.db import create_engine, session_factory, unit_of_work
from smr.services.catalog import Catalog
from smr.services.cron import Cron
from smr.services.dispatch import Dispatcher
from smr.services.wakeups import Waker
from smr.tokens import Tokens, load_tokens

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


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
    waker: Waker
    tokens: Tokens
    cron: Cron
    clock: Clock
    wake: Callable[[], None] = lambda: None

    def describe_routes(self) -> dict[str, str]:
        return {channel: adapter.name for channel, adapter in sorted(self.routes.items())}

    async def start(self) -> None:
        """Store the loaded playbook versions (runs refer to them by content hash)."""
        async with unit_of_work(self.sessions) as session:
            await self.catalog.remember_versions(session, now=self.clock())

    async def tick(self) -> None:
        """One scheduler tick: fire due cron slots, wake due runs, then send due deliveries."""
        await self.cron.tick()
        await self.waker.tick()
        await self.dispatcher.tick()

    async def aclose(self) -> None:
        for adapter in {id(a): a for a in self.routes.values()}.values():
            await adapter.aclose()
        await self.engine.dispose()


def build_runtime(
    settings: Settings, *, clock: Clock = system_clock, generate_tokens: bool = False
) -> Runtime:
    """Wire engine, catalog, channels and dispatcher; loads the playbooks once."""
    from adapters import PLAYBOOK_CHANNELS, build_routes  # the one lookup into adapters

    engine = create_engine(settings.effective_database_url)
    sessions = session_factory(engine)
    catalog = Catalog(settings.playbooks_dir, PLAYBOOK_CHANNELS)
    catalog.reload()
    routes = build_routes(settings, sessions=sessions, clock=clock)
    dispatcher = Dispatcher(
        sessions=sessions, routes=routes, catalog=catalog, settings=settings, clock=clock
    )
    waker = Waker(
        sessions=sessions,
        catalog=catalog,
        clock=clock,
        lease=timedelta(seconds=settings.lease_seconds),
        batch_size=settings.batch_size,
    )
    tokens = load_tokens(settings, generate=generate_tokens)
    cron = Cron(
        sessions=sessions,
        catalog=catalog,
        clock=clock,
        lease=timedelta(seconds=settings.lease_seconds),
        batch_size=settings.batch_size,
        grace=timedelta(seconds=settings.cron_grace_seconds),
    )
    return Runtime(
        settings, engine, sessions, catalog, routes, dispatcher, waker, tokens, cron, clock
    )
