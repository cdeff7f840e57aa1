"""Which partitions of the event log this processor owns: its fair share, under a lease.

Every ``heartbeat`` a processor says it is alive, renews the leases it holds, counts the
processors alive, gives back what it holds beyond its share (the partitions over the
processors, rounded up) and takes free partitions up to its share. A processor that stops
gives its partitions back; one that dies loses them when its leases run out, and the others
take them at their next heartbeat. Two processors never hold one partition: a claim takes only
partitions whose lease ran out, and the transaction that processes a batch renews its owner's
leases first (``partitions.renew``), which a lost lease does not survive.
"""

from __future__ import annotations

import math
import secrets
import socket
from collections.abc import Callable, Collection
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smr.db import unit_of_work
from smr.eventlog import PARTITIONS
from smr.repositories import partitions


def member_name() -> str:
    """A processor's name: its host, and random digits telling its processes apart."""
    return f"{socket.gethostname()[:40]}-{secrets.token_hex(4)}"


class PartitionOwner:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        lease: timedelta,
        clock: Callable[[], datetime],
        name: str | None = None,
    ) -> None:
        self._sessions = sessions
        self._lease = lease
        self._clock = clock
        self.name = name or member_name()
        #: The partitions held at the last heartbeat (a batch's fence tells which it still holds).
        self.held: list[int] = []
        self._beat_at: datetime | None = None

    @property
    def due(self) -> bool:
        """Whether a heartbeat is due (a third of the lease has passed since the last)."""
        return self._beat_at is None or self._clock() - self._beat_at >= self._lease / 3

    async def heartbeat(self) -> list[int]:
        """Renew, rebalance; the partitions held now."""
        now = self._clock()
        until = now + self._lease
        async with unit_of_work(self._sessions) as session:
            await partitions.seen(session, self.name, now=now)
            held = await partitions.renew(session, self.name, until=until)
            members = max(1, await partitions.alive(session, since=now - self._lease))
            share = math.ceil(PARTITIONS / members)
            if len(held) > share:
                extra = held[share:]
                await partitions.release(session, self.name, extra)
                held = held[:share]
            else:
                held += await partitions.claim(
                    session, self.name, count=share - len(held), now=now, until=until
                )
            await partitions.forget(session, seen_before=now - 10 * self._lease)
        self.held = sorted(held)
        self._beat_at = now
        return self.held

    async def fence(
        self, session: AsyncSession, *, within: Collection[int] | None = None
    ) -> list[int]:
        """In a batch's transaction, first: renew the leases (of the partitions ``within``, or
        all); the partitions of those still held."""
        until = self._clock() + self._lease
        return await partitions.renew(session, self.name, until=until, within=within)

    async def leave(self) -> None:
        async with unit_of_work(self._sessions) as session:
            await partitions.leave(session, self.name)
        self.held = []
        self._beat_at = None
