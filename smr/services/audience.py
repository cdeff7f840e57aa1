"""Which contacts of a schedule playbook's audience a firing starts a run for.

The audience is the customers (``audience``: tags and a condition), the customer groups
(``groups``: each group runs as its contact row, see ``smr.subjects``, brought up to date with
the group before its run starts) or the corp alone (``once``: one run per firing).

Tags are filtered in SQL (``repositories.audience``); here each remaining contact passes the
audience's ``if`` condition and the playbook's re-entry rules (mode, cooldown), as a started
event trigger would. A firing only starts the runs, due at once: their steps are taken by
whichever workers claim them, like any run whose wait is over, so a large audience is
spread over all the workers instead of one.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import assert_never

from sqlalchemy.ext.asyncio import AsyncSession

from smr.playbooks import (
    EventView,
    LoadedPlaybook,
    ScheduleTrigger,
    TemplateRuntimeError,
    build_context,
)
from smr.repositories import audience as audience_repo
from smr.repositories import runs as runs_repo
from smr.repositories import subjects as subjects_repo
from smr.services import contacts
from smr.services.catalog import Catalog
from smr.services.contact_state import ContactState
from smr.services.plan import Plan, contact_view
from smr.services.runs import RunPlanner
from smr.statuses import RunStatus
from smr.subjects import ContactKind

log = logging.getLogger(__name__)
#: The corp's contact row's name, as the run log shows it.
CORP_NAME = "企业"

#: Why an audience contact got no run (counted per slot, logged).
CONDITION_FALSE = "condition_false"
CONDITION_ERROR = "condition_error"
REFUSED_MODE = "refused_mode"
REFUSED_COOLDOWN = "refused_cooldown"
CONTACT_GONE = "contact_gone"


@dataclass
class Selection:
    """Starts a firing's runs on a RunPlanner and counts the contacts it passes over."""

    catalog: Catalog
    playbook: LoadedPlaybook
    trigger: EventView
    now: datetime
    skipped: Counter[str] = field(default_factory=Counter)

    def start(self, planner: RunPlanner, contact_id: str, contact: ContactState | None) -> None:
        """Start a run for the contact unless the condition or re-entry rules refuse it
        (restart mode ends the contact's active runs first). ``contact`` is needed only to
        evaluate the audience's condition."""
        history = planner.history.get((contact_id, self.playbook.id), runs_repo.History())
        reason = self._condition_refusal(contact) or self._reentry_refusal(history)
        if reason is not None:
            self.skipped[reason] += 1
            return
        if self.playbook.spec.mode == "restart":
            for run_id in list(history.active_run_ids):
                reason = f"restarted by schedule slot {self.trigger.id}"
                planner.plan.end(run_id, status=RunStatus.EXITED, reason=reason, at=self.now)
            history.active_run_ids.clear()
        planner.start_pending(
            self.playbook, contact_id=contact_id, trigger=self.trigger, cron_slot_id=self.trigger.id
        )

    def _condition_refusal(self, contact: ContactState | None) -> str | None:
        condition = self.playbook.condition
        if condition is None:
            return None
        if contact is None:
            return CONTACT_GONE
        context = build_context(
            contact=contact_view(contact, self.now, self.catalog),
            event=self.trigger,
            trigger=self.trigger,
            run=None,
            now=self.now.astimezone(self.catalog.policies.tz),
            vars=self.catalog.vars,
        )
        try:
            return None if condition.evaluate(context) else CONDITION_FALSE
        except TemplateRuntimeError:
            return CONDITION_ERROR

    def _reentry_refusal(self, history: runs_repo.History) -> str | None:
        spec = self.playbook.spec
        if spec.mode == "single" and history.active_run_ids:
            return REFUSED_MODE
        last = history.last_started_at
        if spec.cooldown and last is not None and self.now - last < spec.cooldown:
            return REFUSED_COOLDOWN
        return None


@dataclass
class Page:
    """A page of a firing's audience, with what deciding their runs needs."""

    ids: list[str]
    states: dict[str, ContactState]
    history: dict[tuple[str, str], runs_repo.History]


async def read_page(
    session: AsyncSession,
    playbook: LoadedPlaybook,
    *,
    after: str | None,
    limit: int,
    now: datetime,
) -> Page:
    """Up to ``limit`` audience contacts after ``after`` in id order, their runs of the
    playbook that re-entry rules look at and, when the audience has a condition, the
    contacts themselves."""
    trigger = playbook.spec.trigger
    assert isinstance(trigger, ScheduleTrigger)
    ids = await _subjects(session, trigger, after=after, limit=limit, now=now)
    states = await contacts.load_states(session, ids, lock=False) if playbook.condition else {}
    watched = runs_repo.Watched.within([playbook.id], cooldown=playbook.spec.cooldown, now=now)
    history = await runs_repo.history(session, contact_ids=ids, watched=watched)
    return Page(ids, states, history)


async def _subjects(
    session: AsyncSession, trigger: ScheduleTrigger, *, after: str | None, limit: int, now: datetime
) -> list[str]:
    """The contact ids of the next page of the trigger's audience."""
    match trigger.subject:
        case ContactKind.PERSON:
            return await audience_repo.page_ids(
                session,
                after=after,
                limit=limit,
                tags_any=trigger.audience.tags_any,
                tags_none=trigger.audience.tags_none,
                segment=trigger.audience.segment,
            )
        case ContactKind.GROUP:
            assert trigger.groups is not None
            target = trigger.groups
            where = subjects_repo.GroupFilter(
                owners=target.owner,
                name_contains=target.name_contains,
                tags_any=target.tags_any,
                tags_none=target.tags_none,
            )
            groups = await subjects_repo.group_page(session, where, after=after, limit=limit)
            await subjects_repo.ensure_groups(session, groups, now=now)
            return [g.contact_id for g in groups]
        case ContactKind.CORP:
            if after is not None:
                return []
            return [await subjects_repo.ensure_corp(session, name=CORP_NAME, now=now)]
        case _:
            assert_never(trigger.subject)


def plan_runs(
    catalog: Catalog, playbook: LoadedPlaybook, *, trigger: EventView, page: Page, now: datetime
) -> Plan:
    """A run of ``playbook``, due now, for each contact of the page that passes the
    condition and re-entry rules (and, in restart mode, the ends of their active runs)."""
    planner = RunPlanner(catalog, history=page.history, now=now)
    selection = Selection(catalog, playbook, trigger=trigger, now=now)
    for contact_id in page.ids:
        selection.start(planner, contact_id, page.states.get(contact_id))
    if selection.skipped:
        log.info("%s for %s skipped: %s", playbook.id, trigger.id, dict(selection.skipped))
    return planner.plan
