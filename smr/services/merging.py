"""One profile per person: contacts an event shows to be the same person become one.

An event links two contacts when it names identities each of them holds (a WeCom customer's
remark mobile is the phone a shop's orders came with; an order carries both a phone and a
shop customer id), or names one by its id and an identity of the other. Only identities of
the kinds ``SMR_MERGE_BY`` lists link (a shop whose customers share a household phone leaves
``phone`` out). The processor merges them as it resolves the event's contact
(``smr.services.contacts.resolve``), in the event's transaction, with both contacts locked:

- the oldest contact survives; the others merge into it and stay as tombstones (kind
  ``merged``) whose id finds the survivor (the API answers 308 to it);
- the survivor takes in their tags, attributes it lacks, stats, monthly spend, purchase
  history, opt-outs and consents (``ContactState.take_in``);
- their identities, events, runs (so re-entry rules and cooldowns count them), deliveries
  (so frequency caps count them), outbox rows and group memberships move to the survivor;
- where both had a run of the same playbook going, the playbook's mode decides: ``single``
  keeps the older run, ``restart`` the newer, ``parallel`` both; the other ends
  (``exited``), and every run that moved notes the merge in its run log;
- the merge is recorded (``contact_merges``): ``GET /v1/contacts/{id}`` lists it, and
  ``GET /v1/events/{id}`` shows the merges the event made.

Events of the merged contact still in the log are processed for the survivor when their
partition's turn comes (their identities, or the tombstone's id, find it).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from smr.ids import new_id
from smr.repositories import merges as repo
from smr.repositories import runs as runs_repo
from smr.services.catalog import Catalog
from smr.services.contacts import Merge
from smr.services.plan import Plan
from smr.statuses import RunStatus

log = logging.getLogger(__name__)


async def survivor_of(session: AsyncSession, contact_id: str) -> str | None:
    """The contact a merged contact's id finds now; None if it was not merged."""
    return await repo.survivor_of(session, contact_id)


class Merger:
    """Merges contacts, linked by identities of the kinds ``by``."""

    def __init__(self, *, by: Collection[str], catalog: Catalog) -> None:
        self._by = frozenset(by)
        self._catalog = catalog
        #: Merges made so far.
        self.merges = 0

    def links(self, kind: str) -> bool:
        """Whether an identity of ``kind`` held by another contact makes it the same person."""
        return kind in self._by

    async def merge(self, session: AsyncSession, merges: Sequence[Merge], *, now: datetime) -> None:
        """Make each merge (all contacts locked) in the caller's transaction, with one
        statement per table whatever the number of merges."""
        if not merges:
            return
        survivors = {m.merged.id: m.survivor.id for m in merges}
        runs = await repo.active_runs(session, {*survivors, *survivors.values()})
        for m in merges:
            m.survivor.take_in(m.merged)
        moved = await repo.move(session, survivors, now=now)
        plan = Plan()
        ended = self._end_doubles(plan, runs, survivors, now=now)
        _note_moved(plan, runs, merges, ended=ended, now=now)
        await runs_repo.end_runs(session, plan.ended)
        await runs_repo.insert_trace(session, plan.trace)
        await repo.record(session, _records(merges, moved, runs, ended=ended, now=now))
        self.merges += len(merges)
        for m in merges:
            log.info("contact %s merged into %s by %s", m.merged.id, m.survivor.id, ", ".join(m.by))

    def _end_doubles(
        self, plan: Plan, runs: list[repo.ActiveRun], survivors: dict[str, str], *, now: datetime
    ) -> set[str]:
        """End the runs the playbooks' modes do not let go on side by side once their
        contacts are one (``survivors``: merged id → survivor id); their ids."""
        by_person: dict[str, list[repo.ActiveRun]] = {}
        for run in runs:
            by_person.setdefault(survivors.get(run.contact_id, run.contact_id), []).append(run)
        ended: set[str] = set()
        for survivor, theirs in by_person.items():
            for mode, kept, others in self._doubles(theirs):
                for run in others:
                    reason = f"contacts merged into {survivor}: run {kept.id} goes on (mode {mode})"
                    plan.end(run.id, status=RunStatus.EXITED, reason=reason, at=now)
                    ended.add(run.id)
        return ended

    def _doubles(
        self, runs: list[repo.ActiveRun]
    ) -> Iterator[tuple[str, repo.ActiveRun, list[repo.ActiveRun]]]:
        """For each playbook both contacts have runs of (``runs``: oldest first) whose mode
        lets one go on: the mode, the run kept, and the others."""
        by_playbook: dict[str, list[repo.ActiveRun]] = {}
        for run in runs:
            by_playbook.setdefault(run.playbook_id, []).append(run)
        for group in by_playbook.values():
            if len({r.contact_id for r in group}) < 2:
                continue
            newest = group[-1]
            playbook = self._catalog.for_run(newest.playbook_id, newest.version)
            mode = playbook.spec.mode if playbook else "parallel"
            if mode == "single":
                yield mode, group[0], group[1:]
            elif mode == "restart":
                yield mode, newest, group[:-1]


def _note_moved(
    plan: Plan,
    runs: list[repo.ActiveRun],
    merges: Sequence[Merge],
    *,
    ended: set[str],
    now: datetime,
) -> None:
    """A ``merge`` entry in the run log of each run that moved to a survivor and goes on."""
    merged = {m.merged.id: m for m in merges}
    for run in runs:
        if run.contact_id in merged and run.id not in ended:
            m = merged[run.contact_id]
            detail = {"merged": m.merged.id, "into": m.survivor.id, "event_id": m.event_id}
            plan.note(run.id, now, "merge", **detail)


def _records(
    merges: Sequence[Merge],
    moved: dict[str, dict[str, int]],
    runs: list[repo.ActiveRun],
    *,
    ended: set[str],
    now: datetime,
) -> list[dict[str, Any]]:
    """The merges' rows in ``contact_merges``: who, by what, and the rows each moved."""
    owners = {r.id: r.contact_id for r in runs}
    return [
        {
            "id": new_id("mg", now),
            "survivor_id": m.survivor.id,
            "merged_id": m.merged.id,
            "event_id": m.event_id,
            "by": list(m.by),
            "moved": {
                **moved[m.merged.id],
                "runs_ended": sum(owners[r] == m.merged.id for r in ended),
            },
            "at": now,
        }
        for m in merges
    ]
