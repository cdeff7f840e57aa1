"""Nested steps compiled to a flat instruction list.

A run's position is then a single integer ``pc`` that survives a restart. Every instruction
carries the ``step_path`` of the step it came from (``steps[2].then[0]``): the run log shows it
and deliveries use it as a stable per-run dedupe key. Each step kind compiles its own steps
(``smr.playbooks.steps``); ``if`` compiles here, to the two jumps below.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace

from smr.playbooks.effects import RunOutcome
from smr.playbooks.expressions import Expression, TemplateRuntimeError, compile_expression
from smr.playbooks.schema import IfStep, Step
from smr.playbooks.steps import STEPS, Instruction, RunState, StepKind
from smr.playbooks.strict import StrictModel

_KINDS: dict[type[StrictModel], StepKind[StrictModel]] = {kind.model: kind for kind in STEPS}


@dataclass(frozen=True)
class JumpUnless:
    """Go on when ``condition`` holds, else jump to ``target`` (an ``if``'s else or end)."""

    step_path: str
    condition: Expression
    target: int

    def run(self, state: RunState, *, pc: int) -> int | RunOutcome:
        try:
            result = bool(self.condition.evaluate(state.context()))
        except TemplateRuntimeError as exc:
            return state.fail(self.step_path, f"if: {exc.message}")
        state.note(self.step_path, "branch", expression=self.condition.source, result=result)
        return pc + 1 if result else self.target


@dataclass(frozen=True)
class Jump:
    step_path: str
    target: int

    def run(self, state: RunState, *, pc: int) -> int | RunOutcome:
        return self.target


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
            out.append(_KINDS[type(step)].compile(step, path))


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
