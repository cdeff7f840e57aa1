"""Moments (朋友圈) engagement coming back as events: ``moment.liked`` and ``moment.commented``.

**Every half hour** (``tick``, called by every ticking worker): the first tick of each UTC half
hour to insert its row in ``periodic_slots`` polls, in the background. A poll reads the
moments the corp made in the last ``days`` (get_moment_list, filter_type 0), then for each
the staff who published it (get_moment_task) and, per publisher, its likes and comments
(get_moment_comments). Each like or comment of a customer (an ``external_userid``; a staff
member's own, a ``userid``, is ignored) becomes an event for the contact with that
``wecom_userid``, ingested with source ``wecom``::

    id    moment:<moment_id>:<staff>:<external_userid>:like:<create_time>   (…:comment:…)
    data  {moment_id, staff, create_time (unix seconds), playbook_id?, delivery_id?}

``playbook_id`` / ``delivery_id`` name the send that posted the moment, when SMR made it.
The ids are deterministic: polling the same moments again makes duplicates, not new events
(WeCom returns no comment text, and no way to ask only for what is new). Each like and comment
is also kept in ``moment_engagements`` (the counts of ``GET /v1/moments``), and the staff who
published a moment SMR posted are brought up to date.

A poll that fails (WeCom, the database) is logged; the next half hour polls again. A tick
never raises. A moment WeCom refuses to describe for good (deleted meanwhile) is skipped.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smr.channels import RetriableSendError, SendError
from smr.db import unit_of_work
from smr.models import MomentEngagementKind
from smr.repositories import moments as repo
from smr.repositories.moments import Engagement, Origin
from smr.schemas import EventIn
from smr.services.accept import IngestReport
from smr.services.passes import Slots, Spawned

log = logging.getLogger(__name__)

SLOT = "wecom.moments.engagement"
EVERY = timedelta(minutes=30)
DEFAULT_DAYS = 7
#: get_moment_comments calls in flight at once (one per publishing staff of a moment).
CONCURRENCY = 5
#: Events ingested per call.
INGEST_BATCH = 500
KEY_LENGTH = 200
EVENT_TYPES = {
    MomentEngagementKind.LIKE: "moment.liked",
    MomentEngagementKind.COMMENT: "moment.commented",
}
Ingest = Callable[[list[EventIn]], Awaitable[IngestReport]]


@dataclass(frozen=True, slots=True)
class Reaction:
    """A customer's like or comment on a moment, as get_moment_comments lists it."""

    kind: MomentEngagementKind
    external_userid: str
    create_time: int


class MomentSource(Protocol):
    """The corp's Moments as WeCom reports them (``adapters.wecom.moment_engagement``).
    Every method raises SendError."""

    def moments(self, *, start: datetime, end: datetime) -> AsyncIterator[list[str]]:
        """The ids of the moments the corp made between ``start`` and ``end``, page by page."""
        ...

    async def publishers(self, moment_id: str) -> list[str]:
        """The staff who have published the moment."""
        ...

    async def reactions(self, moment_id: str, staff: str) -> list[Reaction]:
        """Customers' likes and comments on ``staff``'s copy of the moment."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class PollReport:
    moments: int = 0
    accepted: int = 0
    duplicates: int = 0

    def __add__(self, other: PollReport) -> PollReport:
        return PollReport(
            self.moments + other.moments,
            self.accepted + other.accepted,
            self.duplicates + other.duplicates,
        )


class MomentEngagementPoll:
    """The engagement poll of one process; ``source`` is None without WeCom's 客户联系 API."""

    def __init__(
        self,
        source: MomentSource | None,
        *,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], datetime],
        ingest: Ingest,
        days: int = DEFAULT_DAYS,
    ) -> None:
        self.source = source
        self._sessions = sessions
        self._clock = clock
        self._ingest = ingest
        self._window = timedelta(days=days)
        self._slots = Slots(SLOT, sessions=sessions, clock=clock)
        self._tasks = Spawned()

    async def tick(self) -> None:
        """Start this half hour's poll if no worker has yet (never raises)."""
        if self.source is None:
            return
        slot = slot_of(self._clock())
        if await self._slots.take(slot):
            polled = self._slots.run(slot, self.poll, name="moments engagement poll")
            self._tasks.spawn(polled, f"moments-poll-{slot:%Y%m%d%H%M}")

    async def poll(self) -> PollReport:
        """Read the engagement of the last ``days``' moments and ingest it. Raises SendError
        or a database error when it cannot finish (what was ingested stays)."""
        if self.source is None:
            raise RuntimeError("no Moments source configured")
        end = self._clock()
        totals = PollReport()
        async for page in self.source.moments(start=end - self._window, end=end):
            totals = totals + await self._page(page)
        log.info("wecom moments engagement polled: %s", totals)
        return totals

    async def _page(self, moment_ids: list[str]) -> PollReport:
        engagements: list[Engagement] = []
        for moment_id in moment_ids:
            engagements += await self._moment(moment_id)
        async with unit_of_work(self._sessions) as session:
            found = await repo.origins(session, set(moment_ids))
        events = [event_of(e, found.get(e.moment_id)) for e in engagements]
        accepted = duplicates = 0
        for start in range(0, len(events), INGEST_BATCH):
            report = await self._ingest(events[start : start + INGEST_BATCH])
            new = sum(r.status == "accepted" for r in report.results)
            accepted, duplicates = accepted + new, duplicates + len(report.results) - new
        async with unit_of_work(self._sessions) as session:
            await repo.record_engagements(session, engagements)
        return PollReport(len(moment_ids), accepted, duplicates)

    async def _moment(self, moment_id: str) -> list[Engagement]:
        """The customers' likes and comments on every published copy of the moment."""
        assert self.source is not None
        source = self.source
        try:
            staff = await source.publishers(moment_id)
            found: list[Engagement] = []
            for start in range(0, len(staff), CONCURRENCY):
                chunk = staff[start : start + CONCURRENCY]
                answers = await asyncio.gather(*(source.reactions(moment_id, s) for s in chunk))
                for userid, reactions in zip(chunk, answers, strict=True):
                    found += [engagement_of(moment_id, userid, r) for r in reactions]
        except RetriableSendError:
            raise
        except SendError as exc:
            log.warning("wecom moment %s: WeCom refused to describe it: %s", moment_id, exc)
            return []
        async with unit_of_work(self._sessions) as session:
            await repo.update_publishers(session, moment_id, staff, now=self._clock())
        return found

    async def settle(self) -> None:
        """Wait for the polls started in the background."""
        await self._tasks.settle()

    async def aclose(self) -> None:
        await self._tasks.cancel()
        if self.source is not None:
            await self.source.aclose()


def slot_of(now: datetime) -> datetime:
    """The UTC half hour ``now`` is in."""
    now = now.astimezone(UTC)
    return now.replace(minute=now.minute - now.minute % 30, second=0, microsecond=0)


def engagement_of(moment_id: str, staff: str, reaction: Reaction) -> Engagement:
    key = (
        f"moment:{moment_id}:{staff}:{reaction.external_userid}:{reaction.kind}"
        f":{reaction.create_time}"
    )
    if len(key) > KEY_LENGTH:  # ids longer than WeCom's usual: a digest keeps it unique
        key = f"moment:{hashlib.sha256(key.encode()).hexdigest()}"
    return Engagement(
        key=key,
        moment_id=moment_id,
        staff=staff,
        external_userid=reaction.external_userid,
        kind=reaction.kind,
        created_at=datetime.fromtimestamp(reaction.create_time, UTC),
    )


def event_of(engagement: Engagement, origin: Origin | None) -> EventIn:
    data: dict[str, Any] = {
        "moment_id": engagement.moment_id,
        "staff": engagement.staff,
        "create_time": int(engagement.created_at.timestamp()),
    }
    if origin is not None:
        data |= {"playbook_id": origin.playbook_id, "delivery_id": origin.delivery_id}
    return EventIn.model_validate(
        {
            "id": engagement.key,
            "type": EVENT_TYPES[engagement.kind],
            "occurred_at": engagement.created_at,
            "contact": {"wecom_userid": engagement.external_userid},
            "data": data,
        }
    )
