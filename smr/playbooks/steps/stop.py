"""``stop:``: end the run here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema

from smr.playbooks.effects import RunOutcome, Stopped
from smr.playbooks.steps.base import RunState, StepKind
from smr.playbooks.strict import StrictModel


class StopStep(StrictModel):
    # `- stop:` (null) reads as naturally as `- stop: {}`.
    stop: Annotated[
        dict[str, Any],
        BeforeValidator(lambda v: {} if v is None else v),
        WithJsonSchema({"type": ["object", "null"], "maxProperties": 0}),
    ] = Field(default_factory=dict, max_length=0)


@dataclass(frozen=True)
class Stop:
    step_path: str

    def run(self, state: RunState, *, pc: int) -> int | RunOutcome:
        state.note(self.step_path, "stop")
        return Stopped(self.step_path)


def _compile(step: StopStep, path: str) -> Stop:
    return Stop(path)


KIND = StepKind(
    key="stop",
    model=StopStep,
    compile=_compile,
    models={"StopStep": ("Stop step · 结束", "End the run here. 在此结束。")},
    fields={"StopStep": {"stop": ("Stop · 结束", "Write 'stop: {}' or 'stop:'. 写 stop: 即可。")}},
)
