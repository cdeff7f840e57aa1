"""The playbooks' funnel counts (``PlaybookCount``): added to, and summed for a report."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from smr.models import PlaybookCount, Run, table_of
from smr.repositories._bulk import insert_adding
from smr.repositories._sql import one_of

#: Rows each count is spread over (see ``PlaybookCount``).
SHARDS = 32
_COUNTS = table_of(PlaybookCount)


class CountKey(NamedTuple):
    """What a count counts (a tuple: made by the thousand per batch, cheaply)."""

    playbook_id: str
    day: str
    version: str
    step: str
    metric: str


async def add(session: AsyncSession, counts: Mapping[CountKey, int]) -> None:
    """Add ``counts``, in key order, to one shard picked at random. Call it last in a
    transaction: the count rows are then the last locks it takes, always in key order, so
    two transactions counting the same things never deadlock on them."""
    if not counts:
        return
    shard = random.randrange(SHARDS)  # noqa: S311 - spreads writers, nothing secret
    rows = [{**key._asdict(), "shard": shard, "n": n} for key, n in sorted(counts.items()) if n]
    await insert_adding(session, _COUNTS, rows, add="n")


async def versions_of(session: AsyncSession, run_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
    """run id → (playbook id, version)."""
    wanted = list(set(run_ids))
    if not wanted:
        return {}
    stmt = select(Run.id, Run.playbook_id, Run.playbook_version).where(
        one_of(session, Run.id, wanted)
    )
    return {rid: (pid, version) for rid, pid, version in await session.execute(stmt)}


async def summed(
    session: AsyncSession, playbook_id: str, *, since: str, until: str
) -> Counter[CountKey]:
    """The counts of ``playbook_id`` on the days from ``since`` to ``until`` (inclusive,
    YYYY-MM-DD), the shards summed."""
    rows = await session.execute(
        _summed(), {"playbook_id": playbook_id, "since": since, "until": until}
    )
    return Counter(
        {CountKey(playbook_id, day, v, step, metric): int(n) for day, v, step, metric, n in rows}
    )


@cache
def _summed() -> Select[Any]:
    c = _COUNTS.c

    return (
        select(c.day, c.version, c.step, c.metric, func.sum(c.n))
        .where(
            c.playbook_id == bindparam("playbook_id"),
            c.day >= bindparam("since"),
            c.day <= bindparam("until"),
        )
        .group_by(c.day, c.version, c.step, c.metric)
        .order_by(c.day, c.version, c.step, c.metric)
    )
