"""Pure matching: which playbooks an event starts, and which active runs it ends.

Nothing here reads a clock or storage; callers pass ``now``, snapshots and run history, and
persist what comes back. ``execute`` (advancing one run) lives in ``execution`` and is
re-exported here.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from smr.playbooks.context import ContactView, EventView, RunView, build_context
from smr.playbooks.execution import execute
from smr.playbooks.expressions import Expression, NotAList, TemplateRuntimeError, items_of
from smr.playbooks.loader import LoadedPlaybook
from smr.playbooks.timespec import format_duration

#: Runs one start of a ``trigger.each`` playbook makes at most, and the longest item kept.
MAX_ITEMS = 50
MAX_ITEM = 200

__all__ = [
    "ActiveRun",
    "Evaluation",
    "ExitMatch",
    "Outcome",
    "RunHistory",
    "evaluate_event",
    "execute",
    "match_exits",
]


class Outcome(StrEnum):
    STARTED = "started"
    KEYWORD_NOT_FOUND = "keyword_not_found"
    CONDITION_FALSE = "condition_false"
    CONDITION_ERROR = "condition_error"
    REFUSED_MODE = "refused_mode"
    REFUSED_COOLDOWN = "refused_cooldown"
    #: ``trigger.each`` gave no item: no run.
    NO_ITEMS = "no_items"


@dataclass(frozen=True)
class RunHistory:
    active_run_ids: list[str | int] = field(default_factory=list)
    last_started_at: datetime | None = None


@dataclass(frozen=True)
class Evaluation:
    playbook_id: str
    version: str
    outcome: Outcome
    detail: str | None = None
    ends_runs: list[str | int] = field(default_factory=list)
    #: With ``trigger.each``: one run starts per item.
    items: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ActiveRun:
    run_id: str | int
    playbook_id: str
    trigger: EventView
    started_at: datetime
    item: str | None = None


@dataclass(frozen=True)
class ExitMatch:
    run_id: str | int
    rule_index: int
    detail: str


def evaluate_event(
    event: EventView,
    contact: ContactView,
    playbooks: Iterable[LoadedPlaybook],
    *,
    history: Mapping[str, RunHistory],
    now: datetime,
    vars: Mapping[str, Any],
) -> list[Evaluation]:
    """Decide, per enabled playbook triggered by ``event.type``, whether a run starts.

    Playbooks with another trigger (or a schedule) are not listed. Results are sorted by id.
    ``now`` reaches conditions as given, so pass it in the policies' timezone.
    """
    context = build_context(
        contact=contact, event=event, trigger=event, run=None, now=now, vars=vars
    )
    listening = [p for p in playbooks if p.spec.enabled and p.triggered(event.type, event.data)]
    return [
        _evaluate(p, event=event, context=context, history=history.get(p.id, RunHistory()), now=now)
        for p in sorted(listening, key=lambda p: p.id)
    ]


def match_exits(
    event: EventView,
    contact: ContactView,
    active: Iterable[ActiveRun],
    playbooks: Mapping[str, LoadedPlaybook],
    *,
    now: datetime,
    vars: Mapping[str, Any],
) -> list[ExitMatch]:
    """Return the active runs that ``event`` ends, with the first matching ``exit_on`` rule.

    A rule whose condition fails to evaluate does not match: ending a run is never a side
    effect of a broken expression.
    """
    matches = []
    for run in active:
        playbook = playbooks.get(run.playbook_id)
        if playbook is None:
            continue
        view = RunView(
            id=run.run_id, playbook_id=run.playbook_id, started_at=run.started_at, item=run.item
        )
        context = build_context(
            contact=contact, event=event, trigger=run.trigger, run=view, now=now, vars=vars
        )
        match = _first_exit(playbook, run, event=event, context=context)
        if match is not None:
            matches.append(match)
    return matches


def goal_reached(
    playbook: LoadedPlaybook,
    event: EventView,
    *,
    contact: ContactView,
    run: RunView,
    trigger: EventView,
    now: datetime,
    vars: Mapping[str, Any],
) -> bool:
    """Whether ``event`` is the playbook's goal for ``run`` (its type, and its ``if``: one that
    fails to evaluate is not reached). The time window is the caller's to check."""
    goal = playbook.goal
    if goal is None or goal.event != event.type:
        return False
    if goal.condition is None:
        return True
    context = build_context(
        contact=contact, event=event, trigger=trigger, run=run, now=now, vars=vars
    )
    return _truth(goal.condition, context) is True


def _evaluate(
    playbook: LoadedPlaybook,
    *,
    event: EventView,
    context: Mapping[str, Any],
    history: RunHistory,
    now: datetime,
) -> Evaluation:
    refusal = _keyword_refusal(playbook, event) or _condition_refusal(playbook, context)
    refusal = refusal or _reentry_refusal(playbook, history, now=now)
    if refusal is not None:
        return Evaluation(playbook.id, playbook.version, refusal[0], refusal[1])
    items: list[str] = []
    if playbook.each is not None:
        found = _items(playbook.each, context)
        if isinstance(found, tuple):
            return Evaluation(playbook.id, playbook.version, *found)
        items = found
    ends = list(history.active_run_ids) if playbook.spec.mode == "restart" else []
    return Evaluation(playbook.id, playbook.version, Outcome.STARTED, ends_runs=ends, items=items)


def _items(each: Expression, context: Mapping[str, Any]) -> list[str] | tuple[Outcome, str]:
    """The distinct items of ``trigger.each`` (as text, at most ``MAX_ITEMS``), or why none."""
    try:
        unique = items_of(each, context, longest=MAX_ITEM, most=MAX_ITEMS)
    except TemplateRuntimeError as exc:
        return Outcome.CONDITION_ERROR, f"each: {each.source}: {exc.message}"
    except NotAList as exc:
        return Outcome.CONDITION_ERROR, f"each: {exc}"
    if not unique:
        return Outcome.NO_ITEMS, f"each: {each.source} gave no item"
    return unique


Refusal = tuple[Outcome, str] | None


def _keyword_refusal(playbook: LoadedPlaybook, event: EventView) -> Refusal:
    if not playbook.keywords:
        return None
    # Keywords answer customers: the staff's own words in an archived chat never match (a
    # playbook that wants them tests event.data.speaker in its `if:` instead).
    if event.data.get("speaker") == "staff":
        return Outcome.KEYWORD_NOT_FOUND, "keywords match what customers write, not the staff"
    text = event.data.get("text")
    haystack = text.casefold() if isinstance(text, str) else ""
    if any(word in haystack for word in playbook.keywords):
        return None
    return Outcome.KEYWORD_NOT_FOUND, f"keywords: {', '.join(playbook.keywords)}"


def _condition_refusal(playbook: LoadedPlaybook, context: Mapping[str, Any]) -> Refusal:
    if playbook.condition is None:
        return None
    result = _truth(playbook.condition, context)
    if isinstance(result, TemplateRuntimeError):
        return Outcome.CONDITION_ERROR, f"{playbook.condition.source}: {result.message}"
    return None if result else (Outcome.CONDITION_FALSE, playbook.condition.source)


def _reentry_refusal(playbook: LoadedPlaybook, history: RunHistory, *, now: datetime) -> Refusal:
    spec = playbook.spec
    if spec.mode == "single" and history.active_run_ids:
        return Outcome.REFUSED_MODE, f"run {history.active_run_ids[0]} is active (mode: single)"
    last = history.last_started_at
    if spec.cooldown and last is not None and now - last < spec.cooldown:
        since = format_duration(now - last)
        return (
            Outcome.REFUSED_COOLDOWN,
            f"last start {since} ago, cooldown {format_duration(spec.cooldown)}",
        )
    return None


def _first_exit(
    playbook: LoadedPlaybook, run: ActiveRun, *, event: EventView, context: Mapping[str, Any]
) -> ExitMatch | None:
    for index, rule in enumerate(playbook.exits):
        if rule.event != event.type:
            continue
        if rule.condition is None:
            return ExitMatch(run.run_id, index, f"exit_on[{index}]: {event.type}")
        if _truth(rule.condition, context) is True:
            return ExitMatch(run.run_id, index, f"exit_on[{index}]: {rule.condition.source}")
    return None


def _truth(expression: Expression, context: Mapping[str, Any]) -> bool | TemplateRuntimeError:
    try:
        return bool(expression.evaluate(context))
    except TemplateRuntimeError as exc:
        return exc
