"""Nested steps compiled to a flat instruction list.

A run's position is then a single integer ``pc`` that survives a restart. Every instruction
carries the ``step_path`` of the step it came from (``steps[2].then[0]``): the run log shows it
and deliveries use it as a stable per-run dedupe key.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import time, timedelta
from typing import Literal

from smr.playbooks.expressions import Expression, Template, compile_expression, compile_template
from smr.playbooks.schema import (
    IfStep,
    NotifyStaffStep,
    SendStep,
    SetStep,
    Step,
    StopStep,
    TagStep,
    WaitStep,
    WaitUntil,
)


@dataclass(frozen=True)
class Tag:
    """Tag names are templates (``渠道:{{ trigger.data.state }}``); plain names render as-is."""

    step_path: str
    add: tuple[Template, ...]
    remove: tuple[Template, ...]


@dataclass(frozen=True)
class SetAttrs:
    step_path: str
    values: dict[str, Template]


@dataclass(frozen=True)
class Wait:
    """Exactly one of ``duration``, ``template`` and ``until`` is set."""

    step_path: str
    duration: timedelta | None = None
    template: Template | None = None
    until: time | None = None


@dataclass(frozen=True)
class Send:
    step_path: str
    channel: str
    category: Literal["marketing", "service"]
    text: Template | None
    template_code: str | None
    params: dict[str, Template]


@dataclass(frozen=True)
class NotifyStaff:
    step_path: str
    text: Template


@dataclass(frozen=True)
class Stop:
    step_path: str


@dataclass(frozen=True)
class JumpUnless:
    step_path: str
    condition: Expression
    target: int


@dataclass(frozen=True)
class Jump:
    step_path: str
    target: int


Instruction = Tag | SetAttrs | Wait | Send | NotifyStaff | Stop | JumpUnless | Jump


@dataclass(frozen=True)
class Program:
    instructions: tuple[Instruction, ...]

    def __len__(self) -> int:
        return len(self.instructions)


def compile_program(steps: Sequence[Step]) -> Program:
    out: list[Instruction] = []
    _emit_block(steps, out, prefix="steps")
    return Program(tuple(out))


def _emit_block(steps: Sequence[Step], out: list[Instruction], *, prefix: str) -> None:
    for index, step in enumerate(steps):
        path = f"{prefix}[{index}]"
        if isinstance(step, IfStep):
            _emit_if(step, out, path=path)
        else:
            out.append(_simple(step, path))


def _emit_if(step: IfStep, out: list[Instruction], *, path: str) -> None:
    branch_at = len(out)
    out.append(JumpUnless(path, compile_expression(step.condition), target=-1))
    _emit_block(step.then, out, prefix=f"{path}.then")
    if step.otherwise:
        jump_at = len(out)
        out.append(Jump(path, target=-1))
        out[branch_at] = replace(_jump_unless(out[branch_at]), target=len(out))
        _emit_block(step.otherwise, out, prefix=f"{path}.else")
        out[jump_at] = Jump(path, target=len(out))
    else:
        out[branch_at] = replace(_jump_unless(out[branch_at]), target=len(out))


def _jump_unless(instruction: Instruction) -> JumpUnless:
    assert isinstance(instruction, JumpUnless)
    return instruction


def _simple(step: Step, path: str) -> Instruction:
    match step:
        case TagStep(tag=change):
            add, remove = (
                tuple(map(compile_template, names)) for names in (change.add, change.remove)
            )
            return Tag(path, add, remove)
        case SetStep(values=values):
            return SetAttrs(path, {name: compile_template(v) for name, v in values.items()})
        case WaitStep(wait=value):
            return _wait(value, path)
        case SendStep(send=spec):
            text = compile_template(spec.text) if spec.text is not None else None
            params = {name: compile_template(v) for name, v in spec.params.items()}
            return Send(path, spec.channel, spec.category, text, spec.template, params)
        case NotifyStaffStep(notify_staff=spec):
            return NotifyStaff(path, compile_template(spec.text))
        case StopStep():
            return Stop(path)
    raise TypeError(f"cannot compile {type(step).__name__} at {path}")


def _wait(value: timedelta | str | WaitUntil, path: str) -> Wait:
    if isinstance(value, timedelta):
        return Wait(path, duration=value)
    if isinstance(value, WaitUntil):
        return Wait(path, until=value.until)
    return Wait(path, template=compile_template(value))
