"""Keeping the stored customer groups in step with WeCom: the full sync and the refetches
callbacks ask for.

**Full sync** (``GroupSync.sync``): groupchat/list page by page; each listed group's owner
status is stored, and groupchat/get fetches the groups whose member_version is not known to be
current (all of them, unless WeCom reports versions in the list); the active groups WeCom no
longer lists are then marked dismissed. A group WeCom refuses to describe (a permanent error)
is logged and kept as it was; a failure of the moment (timeouts, throttling, the database)
ends the sync, and nothing is marked dismissed.

**Daily** (``tick``, called by every ticking worker): the first tick of each UTC day to insert
the day's row in ``periodic_slots`` runs the full sync, in the background, so the first worker
to start syncs at once and one worker a day syncs after that. A sync that fails gives its slot
back and is tried again after a growing wait (``RETRY_FIRST`` up to ``RETRY_CAP``); a tick
never raises.

**Callbacks** (``on_callback``): what a callback changes without WeCom is applied at once (see
``smr.services.groups``); a group to fetch is fetched in the background, ``fetch_delay`` later
(WeCom: "部分信息是异步处理，可能需要等一段时间(例如2秒)"), so the callback is answered at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smr.backoff import Backoff
from smr.channels import RetriableSendError, SendError
from smr.db import log_failure, unit_of_work
from smr.repositories import group_reads as reads
from smr.repositories import groups as repo
from smr.repositories.groups import FetchedGroup
from smr.services import groups
from smr.services.groups import GroupChange, GroupSource, ListedGroup
from smr.services.passes import Slots, Spawned

log = logging.getLogger(__name__)

DAILY_SLOT = "wecom.groups.sync"
#: groupchat/get calls in flight at once during a full sync.
CONCURRENCY = 5
RETRY_FIRST = 60.0
RETRY_CAP = 3600.0


@dataclass(frozen=True, slots=True)
class SyncReport:
    listed: int = 0
    fetched: int = 0
    unchanged: int = 0
    refused: int = 0
    dismissed: int = 0


class GroupSync:
    """The group sync of one process. ``source`` is None when WeCom's 客户联系 API is not
    configured: callbacks are then applied as far as they go without a fetch."""

    def __init__(
        self,
        source: GroupSource | None,
        *,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], datetime],
        fetch_delay: float = 2.0,
    ) -> None:
        self.source = source
        self.fetch_delay = fetch_delay
        self._sessions = sessions
        self._clock = clock
        self._syncing = asyncio.Lock()
        self._tasks = Spawned()
        self._refreshing: set[str] = set()
        self._slots = Slots(DAILY_SLOT, sessions=sessions, clock=clock)
        self._retry_at: datetime | None = None
        self.backoff = Backoff(first=RETRY_FIRST, cap=RETRY_CAP)

    # The daily sync --------------------------------------------------------------------------

    async def tick(self) -> None:
        """Start today's full sync if no worker has yet (see the module docstring)."""
        now = self._clock()
        slot = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        waiting = self._retry_at is not None and now < self._retry_at
        if self.source is None or waiting:
            return
        if await self._slots.take(slot):
            self._tasks.spawn(self._daily(slot), f"group-sync-{slot:%Y%m%d}")

    async def _daily(self, slot: datetime) -> None:
        try:
            await self.sync()
        except asyncio.CancelledError:  # shutting down: another worker may run it today
            await asyncio.shield(self._give_back(slot, None))
            raise
        except Exception as exc:
            await self._give_back(slot, exc)
        else:
            self.backoff.succeeded()
            self._retry_at = None

    async def _give_back(self, slot: datetime, exc: Exception | None) -> None:
        if exc is not None:
            delay = self.backoff.failed()
            self._retry_at = self._clock() + timedelta(seconds=delay)
            log_failure(log, f"group sync (next try in {delay:.0f}s)", exc)
        await self._slots.give_back(slot)

    def start(self) -> bool:
        """Start a full sync in the background now; False when one is already running."""
        if self.source is None:
            raise RuntimeError("no group source configured")
        if self._syncing.locked():
            return False
        self._tasks.spawn(self._logged_sync(), "group-sync-now")
        return True

    async def _logged_sync(self) -> None:
        try:
            await self.sync()
        except Exception as exc:
            log_failure(log, "group sync", exc)

    # The full sync ---------------------------------------------------------------------------

    async def sync(self) -> SyncReport:
        """Sync every group now. Raises SendError or a database error when it cannot finish."""
        if self.source is None:
            raise RuntimeError("no group source configured")
        async with self._syncing:
            started = self._clock()
            async with unit_of_work(self._sessions) as session:
                known = await reads.stored_versions(session)
            totals = [0, 0, 0, 0]
            async for page in self.source.pages():
                counts = await self._sync_page(page, known, started=started)
                totals = [a + b for a, b in zip(totals, counts, strict=True)]
            async with unit_of_work(self._sessions) as session:
                dismissed = await repo.dismiss_unlisted(
                    session, listed_since=started, now=self._clock()
                )
                await repo.link_contacts(session)
        listed, fetched, unchanged, refused = totals
        report = SyncReport(listed, fetched, unchanged, refused, dismissed)
        log.info("wecom groups synced: %s", report)
        return report

    async def _sync_page(
        self, page: list[ListedGroup], known: dict[str, str | None], *, started: datetime
    ) -> list[int]:
        """[listed, fetched, unchanged, refused] of one groupchat/list page."""
        async with unit_of_work(self._sessions) as session:
            listed = {g.chat_id: g.owner_status for g in page}
            await repo.mark_listed(session, listed, now=started)
        current = {
            g.chat_id for g in page if g.member_version and known.get(g.chat_id) == g.member_version
        }
        wanted = [g for g in page if g.chat_id not in current]
        fetched: list[FetchedGroup] = []
        refused = 0
        for start in range(0, len(wanted), CONCURRENCY):
            chunk = wanted[start : start + CONCURRENCY]
            for found in await asyncio.gather(*(self._fetch(g.chat_id) for g in chunk)):
                fetched += [found] if found else []
                refused += found is None
        async with unit_of_work(self._sessions) as session:
            # Customers are linked to contacts once, when every page is in (``sync``).
            await repo.save_fetched(session, fetched, owner_status=listed, now=self._clock())
        return [len(page), len(fetched), len(current), refused]

    async def _fetch(self, chat_id: str) -> FetchedGroup | None:
        """The group, or None when WeCom refuses it for good (then it is logged); a failure
        of the moment (RetriableSendError) is raised."""
        assert self.source is not None
        try:
            return await self.source.fetch(chat_id)
        except RetriableSendError:
            raise
        except SendError as exc:
            log.warning("wecom group %s: groupchat/get refused: %s", chat_id, exc)
            return None

    # Callbacks -------------------------------------------------------------------------------

    async def on_callback(self, change: GroupChange) -> dict[str, Any] | None:
        """Apply what ``change`` says at once, have the group fetched in the background if
        needed; the stored group as it now is (``groups.snapshot``), or None."""
        async with unit_of_work(self._sessions) as session:
            refetch = await groups.apply(session, change, now=self._clock())
            found = await groups.snapshot(session, change.chat_id)
        if refetch:
            self.refresh_later(change.chat_id)
        return found

    def refresh_later(self, chat_id: str) -> None:
        """Fetch the group ``fetch_delay`` from now, in the background (once, however many
        callbacks ask before it runs)."""
        if self.source is None:
            log.warning("wecom group %s changed; no 客户联系 secret to fetch it with", chat_id)
            return
        if chat_id not in self._refreshing:
            self._refreshing.add(chat_id)
            self._tasks.spawn(self._refresh(chat_id), f"group-fetch-{chat_id}")

    async def _refresh(self, chat_id: str) -> None:
        assert self.source is not None
        try:
            await asyncio.sleep(self.fetch_delay)
            self._refreshing.discard(chat_id)
            group = await self.source.fetch(chat_id)
            async with unit_of_work(self._sessions) as session:
                await groups.save(session, group, now=self._clock())
        except SendError as exc:  # the daily sync catches up
            log.warning("wecom group %s: groupchat/get failed: %s", chat_id, exc)
        except Exception as exc:
            log_failure(log, f"storing wecom group {chat_id}", exc)
        finally:
            self._refreshing.discard(chat_id)

    # Background tasks ------------------------------------------------------------------------

    async def settle(self) -> None:
        """Wait for the syncs and fetches started in the background."""
        await self._tasks.settle()

    async def aclose(self) -> None:
        await self._tasks.cancel()
        if self.source is not None:
            await self.source.aclose()
