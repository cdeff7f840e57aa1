"""Which contacts of a schedule playbook's audience a firing starts a run for.

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

from sqlalchemy.ext.asyncio import AsyncSession

from smr.playbooks import EventView, LoadedPlaybook, TemplateRuntimeError, build_context
from smr.repositories import runs as runs_repo
from smr.services import contacts
from smr.services.catalog import Catalog
from smr.services.contacts import ContactState
from smr.services.plan import Plan, contact_view
from smr.services.runs import RunPlanner

log = logging.getLogger(__name__)

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
                planner.plan.end(run_id, status="exited", reason=reason, at=self.now)
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
            contact=contact_view(contact, self.now, self.catalog.policies.tz),
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


async def start_runs(
    session: AsyncSession,
    catalog: Catalog,
    *,
    playbook: LoadedPlaybook,
    trigger: EventView,
    ids: list[str],
    now: datetime,
) -> Plan:
    """Start a run of ``playbook``, due now, for each of these contacts that passes the
    condition and re-entry rules, and write the runs; returns what was written. Contacts are
    read only when the audience has a condition."""
    states = await contacts.load_states(session, ids) if playbook.condition else {}
    cooldown = playbook.spec.cooldown
    history = await runs_repo.history(
        session,
        contact_ids=ids,
        playbook_ids=[playbook.id],
        since=now - cooldown if cooldown else None,
    )
    planner = RunPlanner(catalog, history=history, now=now)
    selection = Selection(catalog, playbook, trigger=trigger, now=now)
    for contact_id in ids:
        selection.start(planner, contact_id, states.get(contact_id))
    await planner.plan.write(session)
    if selection.skipped:
        log.info("%s for %s skipped: %s", playbook.id, trigger.id, dict(selection.skipped))
    return planner.plan
