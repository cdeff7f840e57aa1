"""Advance one run through its program until it ends, stops or waits."""

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from smr.playbooks.context import ContactView, EventView, RunView
from smr.playbooks.effects import Completed, Execution, RunOutcome
from smr.playbooks.loader import LoadedPlaybook
from smr.playbooks.steps import RunState

MAX_INSTRUCTIONS = 1000


def execute(
    playbook: LoadedPlaybook,
    *,
    pc: int,
    contact: ContactView,
    event: EventView,
    trigger: EventView,
    run: RunView,
    now: datetime,
    vars: Mapping[str, Any],
    tz: ZoneInfo,
) -> Execution:
    """Run ``playbook`` from instruction ``pc`` until it completes, stops, waits or fails.

    ``now`` must be aware; for a woken run pass its intended wake time so waits do not drift.
    Nothing passed in is mutated: tags and attributes change on a private copy that later steps
    see. Raises ValueError for a naive ``now``.
    """
    if now.tzinfo is None:
        raise ValueError("execute needs an aware 'now'")
    working = replace(contact, tags=list(contact.tags), attributes=dict(contact.attributes))
    state = RunState(
        contact=working, event=event, trigger=trigger, run=run, now=now, tz=tz, vars=vars
    )
    outcome = _loop(playbook, pc, state)
    return Execution(effects=state.effects, trace=state.trace, outcome=outcome)


def _loop(playbook: LoadedPlaybook, pc: int, state: RunState) -> RunOutcome:
    instructions = playbook.program.instructions
    for _ in range(MAX_INSTRUCTIONS):
        if not 0 <= pc < len(instructions):
            return Completed()
        step = instructions[pc].run(state, pc=pc)
        if not isinstance(step, int):
            return step
        pc = step
    return state.fail(instructions[pc].step_path, f"more than {MAX_INSTRUCTIONS} instructions")
