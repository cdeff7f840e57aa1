"""Segments (客户分层) kept as memberships, so that counts, previews and audiences are a read,
and entering or leaving one is an event playbooks can start on.

A customer's memberships are evaluated again whenever something may have changed them:

- **as events are processed and runs advance** (``reassess``, in the same transaction as the
  contact's changes): a customer an order puts over a segment's threshold is in it when the
  order's transaction commits;
- **every hour, and within a minute of a new or edited definition** (``Refresher``): each
  customer in turn, for what time alone changes (``contact.stats.days_since_last_order``,
  last month's spend once a month turns).

A change of membership is written to ``contacts.segments`` and ``segment_members``, and
posted as a ``segment.entered`` or ``segment.exited`` event for the customer (``data:
{segment}``), processed after the events before it. A new or edited definition is first filled
in whole without posting anything: defining a segment never messages anyone; from then on, its
entries and exits are posted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smr.db import unit_of_work
from smr.repositories import audience as audience_repo
from smr.repositories import segments as repo
from smr.repositories.log_append import Appending
from smr.repositories.segments import Membership
from smr.segments.loader import segment_context
from smr.services import contacts, emitting
from smr.services.catalog import Catalog
from smr.services.contact_state import ContactState
from smr.services.emitting import own_event
from smr.services.passes import Slots, Spawned
from smr.services.plan import contact_view
from smr.subjects import ContactKind

log = logging.getLogger(__name__)

ENTERED, EXITED = "segment.entered", "segment.exited"
SLOT = "segments"
#: How often a worker looks for definitions not filled yet (seconds).
CHECK_SECONDS = 60.0


@dataclass
class Moves:
    """The memberships some contacts gained and lost, and the events that say so."""

    entered: list[Membership] = field(default_factory=list)
    left: list[Membership] = field(default_factory=list)
    posted: list[Appending] = field(default_factory=list)


def reassess(
    states: Collection[ContactState],
    catalog: Catalog,
    *,
    now: datetime,
    filled: Mapping[str, str],
) -> Moves:
    """Each customer's segments as of ``now``, set on its state; the moves, with an event for
    each in a segment whose definition is ``filled`` (segment id → version filled in whole)."""
    moves = Moves()
    segments = catalog.segments.current
    if not segments and not any(s.segments for s in states):
        return moves  # nothing to evaluate, nothing to leave
    local = now.astimezone(catalog.policies.tz)
    for state in {id(s): s for s in states}.values():
        if state.kind != ContactKind.PERSON or state.gone:
            continue
        view = contact_view(state, now, catalog)
        context = segment_context(view, now=local, vars=catalog.vars)
        now_in = sorted(sid for sid, s in segments.items() if s.holds(view, context))
        before = set(state.segments)
        entering = [(sid, ENTERED) for sid in now_in if sid not in before]
        for sid, kind in entering + [(sid, EXITED) for sid in sorted(before - set(now_in))]:
            _move(moves, state, sid, kind, posted=_live(sid, catalog, filled), now=now)
        if now_in != state.segments:
            state.segments = now_in
    return moves


def _live(segment_id: str, catalog: Catalog, filled: Mapping[str, str]) -> bool:
    """Whether moves in and out of the segment are posted: it is defined, and filled."""
    segment = catalog.segments.current.get(segment_id)
    return segment is not None and filled.get(segment_id) == segment.version


def _move(
    moves: Moves, state: ContactState, segment_id: str, kind: str, *, posted: bool, now: datetime
) -> None:
    (moves.entered if kind == ENTERED else moves.left).append(Membership(segment_id, state.id))
    if posted:
        event = own_event(kind, {"id": state.id}, {"segment": segment_id}, now=now)
        moves.posted.append(event)


async def write(session: AsyncSession, moves: Moves, *, now: datetime) -> None:
    """Store the memberships and post the events (the contacts' own column is written with
    the contacts)."""
    await repo.enter(session, moves.entered, since=now)
    await repo.leave(session, moves.left)
    await emitting.post(session, moves.posted, now=now)


async def filled(session: AsyncSession, catalog: Catalog) -> dict[str, str]:
    """The definitions filled in whole (none read when no segment is defined)."""
    return await repo.filled(session) if catalog.segments.current else {}


class Refresher:
    """The pass over every customer: hourly, and within a minute of a definition not filled
    yet. One worker takes each minute's slot, and a process starts no pass while its last one
    runs; each batch is its own transaction (passes of two workers that overlap wait for each
    other's batches: the contacts are locked)."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], datetime],
        batch_size: int,
    ) -> None:
        self._catalog = catalog
        self._sessions = sessions
        self._clock = clock
        self._batch_size = batch_size
        self._slots = Slots(SLOT, sessions=sessions, clock=clock)
        self._tasks = Spawned()
        self._checked: datetime | None = None

    async def tick(self) -> None:
        """Start a pass when one is due and no worker has taken this minute's (never raises)."""
        if not self._catalog.segments.current or self._tasks.running:
            return  # one pass at a time in a process
        now = self._clock().astimezone(UTC)
        minute = now.replace(second=0, microsecond=0)
        if minute.minute != 0 and not await self._unfilled(now):
            return
        if await self._slots.take(minute):
            done = self._slots.run(minute, self.refresh, name="segments pass")
            self._tasks.spawn(done, f"segments-{minute:%Y%m%d%H%M}")

    async def _unfilled(self, now: datetime) -> bool:
        if self._checked is not None and (now - self._checked).total_seconds() < CHECK_SECONDS:
            return False
        self._checked = now
        try:
            async with unit_of_work(self._sessions) as session:
                known = await repo.filled(session)
        except Exception:  # a tick never raises; the next check tries again
            log.exception("segments: could not read the filled definitions")
            return False
        current = self._catalog.segments.current
        return any(known.get(sid) != s.version for sid, s in current.items())

    async def refresh(self) -> dict[str, int]:
        """Evaluate every customer's segments; returns how many entered and left. Definitions
        not filled yet are filled without posting, then recorded as filled."""
        segments = dict(self._catalog.segments.current)
        async with unit_of_work(self._sessions) as session:
            known = await repo.filled(session)
            await repo.drop(session, [sid for sid in known if sid not in segments])
        live = {sid: v for sid, v in known.items() if sid in segments}
        totals = {"entered": 0, "left": 0}
        after: str | None = None
        while True:
            async with unit_of_work(self._sessions) as session:
                ids = await audience_repo.page_ids(session, after=after, limit=self._batch_size)
                if not ids:
                    break
                moves = await self._batch(session, ids, live)
            totals["entered"] += len(moves.entered)
            totals["left"] += len(moves.left)
            after = ids[-1]
        fresh = {sid: s.version for sid, s in segments.items() if known.get(sid) != s.version}
        async with unit_of_work(self._sessions) as session:
            await repo.mark_filled(session, fresh, now=self._clock())
        log.info("segments: pass done: %s; filled: %s", totals, sorted(fresh))
        return totals

    async def _batch(self, session: AsyncSession, ids: list[str], live: Mapping[str, str]) -> Moves:
        now = self._clock()
        states = await contacts.load_states(session, ids)
        moves = reassess(states.values(), self._catalog, now=now, filled=live)
        await contacts.write_back(session, list(states.values()), now=now)
        await write(session, moves, now=now)
        return moves

    async def settle(self) -> None:
        await self._tasks.settle()

    async def aclose(self) -> None:
        await self._tasks.cancel()
