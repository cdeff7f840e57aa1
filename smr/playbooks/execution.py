"""Advance one run through its program until it ends, stops or waits."""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from smr.playbooks.context import ContactView, EventView, RunView, build_context
from smr.playbooks.effects import (
    Completed,
    Effect,
    Execution,
    Failed,
    NotifyEffect,
    RunOutcome,
    SendEffect,
    SetEffect,
    Stopped,
    TagEffect,
    TraceEntry,
    TraceKind,
    Waiting,
)
from smr.playbooks.expressions import TemplateRuntimeError
from smr.playbooks.loader import LoadedPlaybook
from smr.playbooks.program import (
    Instruction,
    Jump,
    JumpUnless,
    NotifyStaff,
    Send,
    SetAttrs,
    Stop,
    Tag,
    Wait,
)
from smr.playbooks.timespec import DurationTooLong, next_wall_time, parse_duration

MAX_INSTRUCTIONS = 1000

_INT = re.compile(r"-?\d+")
_FLOAT = re.compile(r"-?\d+\.\d+")


@dataclass
class _Run:
    contact: ContactView
    event: EventView
    trigger: EventView
    run: RunView
    now: datetime
    tz: ZoneInfo
    vars: Mapping[str, Any]
    effects: list[Effect] = field(default_factory=list)
    trace: list[TraceEntry] = field(default_factory=list)

    def context(self) -> dict[str, Any]:
        return build_context(
            contact=self.contact,
            event=self.event,
            trigger=self.trigger,
            run=self.run,
            now=self.now.astimezone(self.tz),
            vars=self.vars,
        )

    def note(self, step_path: str, kind: TraceKind, **detail: Any) -> None:
        self.trace.append(TraceEntry(step_path, kind, detail))

    def fail(self, step_path: str, reason: str) -> Failed:
        self.note(step_path, "error", reason=reason)
        return Failed(reason)


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
    state = _Run(contact=working, event=event, trigger=trigger, run=run, now=now, tz=tz, vars=vars)
    outcome = _loop(playbook, pc, state)
    return Execution(effects=state.effects, trace=state.trace, outcome=outcome)


def _loop(playbook: LoadedPlaybook, pc: int, state: _Run) -> RunOutcome:
    instructions = playbook.program.instructions
    for _ in range(MAX_INSTRUCTIONS):
        if not 0 <= pc < len(instructions):
            return Completed()
        step = _step(instructions[pc], state, pc=pc)
        if not isinstance(step, int):
            return step
        pc = step
    return state.fail(instructions[pc].step_path, f"more than {MAX_INSTRUCTIONS} instructions")


def _step(instruction: Instruction, state: _Run, *, pc: int) -> int | RunOutcome:
    match instruction:
        case Tag():
            return _tag(instruction, state, pc=pc)
        case SetAttrs():
            return _set(instruction, state, pc=pc)
        case Wait():
            return _wait(instruction, state, pc=pc)
        case Send():
            return _send(instruction, state, pc=pc)
        case NotifyStaff():
            return _notify(instruction, state, pc=pc)
        case JumpUnless():
            return _branch(instruction, state, pc=pc)
        case Jump():
            return instruction.target
        case Stop():
            state.note(instruction.step_path, "stop")
            return Stopped(instruction.step_path)
    raise TypeError(f"unknown instruction {instruction!r}")


def _tag(instruction: Tag, state: _Run, *, pc: int) -> int | RunOutcome:
    context = state.context()
    try:
        add, remove = (
            [t.render(context).strip() for t in names]
            for names in (instruction.add, instruction.remove)
        )
    except TemplateRuntimeError as exc:
        return state.fail(instruction.step_path, f"tag: {exc.message}")
    add, remove = [t for t in dict.fromkeys(add) if t], [t for t in remove if t]
    kept = [tag for tag in state.contact.tags if tag not in remove]
    state.contact = replace(state.contact, tags=kept + [tag for tag in add if tag not in kept])
    state.effects.append(TagEffect(instruction.step_path, tuple(add), tuple(remove)))
    state.note(instruction.step_path, "tag", add=add, remove=remove)
    return pc + 1


def _set(instruction: SetAttrs, state: _Run, *, pc: int) -> int | RunOutcome:
    context = state.context()
    try:
        values = {name: _typed(t.render(context)) for name, t in instruction.values.items()}
    except TemplateRuntimeError as exc:
        return state.fail(instruction.step_path, f"set: {exc.message}")
    attributes = {**state.contact.attributes, **values}
    state.contact = replace(state.contact, attributes=attributes)
    state.effects.append(SetEffect(values))
    state.note(instruction.step_path, "set", values=values)
    return pc + 1


def _typed(rendered: str) -> Any:
    # Rendering always yields text; keep numbers numeric so later comparisons behave.
    text = rendered.strip()
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return rendered


def _wait(instruction: Wait, state: _Run, *, pc: int) -> RunOutcome:
    if instruction.until is not None:
        wake_at = next_wall_time(state.now, instruction.until, tz=state.tz)
    elif instruction.duration is not None:
        wake_at = state.now + instruction.duration
    else:
        delay = _rendered_delay(instruction, state)
        if isinstance(delay, Failed):
            return delay
        wake_at = state.now + delay
    wake_at = wake_at.astimezone(UTC)
    # measured_from: when the run reached the wait (at ingest, when the event was received).
    measured_from = state.now.astimezone(UTC).isoformat()
    state.note(
        instruction.step_path, "wait", wake_at=wake_at.isoformat(), measured_from=measured_from
    )
    return Waiting(pc=pc + 1, wake_at=wake_at)


def _rendered_delay(instruction: Wait, state: _Run) -> timedelta | Failed:
    assert instruction.template is not None
    try:
        rendered = instruction.template.render(state.context())
    except TemplateRuntimeError as exc:
        return state.fail(instruction.step_path, f"wait: {exc.message}")
    try:
        return parse_duration(rendered)
    except DurationTooLong as exc:
        return state.fail(instruction.step_path, f"wait: {exc}")
    except ValueError:
        return state.fail(instruction.step_path, f"wait rendered '{rendered}', not a duration")


def _send(instruction: Send, state: _Run, *, pc: int) -> int:
    context = state.context()
    base = SendEffect(
        instruction.step_path,
        instruction.channel,
        instruction.category,
        text=None,
        template_code=instruction.template_code,
    )
    try:
        text = instruction.text.render(context) if instruction.text else None
        params = {name: t.render(context) for name, t in instruction.params.items()}
        effect = replace(base, text=text, params=params)
    except TemplateRuntimeError as exc:
        effect = replace(base, error=f"template_error: {exc.message}")
    state.effects.append(effect)
    detail = {"channel": effect.channel, "category": effect.category, "error": effect.error}
    state.note(instruction.step_path, "send", **detail)
    return pc + 1


def _notify(instruction: NotifyStaff, state: _Run, *, pc: int) -> int | RunOutcome:
    try:
        text = instruction.text.render(state.context())
    except TemplateRuntimeError as exc:
        return state.fail(instruction.step_path, f"notify_staff: {exc.message}")
    state.effects.append(NotifyEffect(instruction.step_path, text))
    state.note(instruction.step_path, "notify")
    return pc + 1


def _branch(instruction: JumpUnless, state: _Run, *, pc: int) -> int | RunOutcome:
    try:
        result = bool(instruction.condition.evaluate(state.context()))
    except TemplateRuntimeError as exc:
        return state.fail(instruction.step_path, f"if: {exc.message}")
    state.note(
        instruction.step_path, "branch", expression=instruction.condition.source, result=result
    )
    return pc + 1 if result else instruction.target
