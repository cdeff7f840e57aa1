"""``set: {tier: 钻粉}``: set contact attributes. Names are literal; values are templates, and
a value that renders as a number is stored as one."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from pydantic import Field

from smr.playbooks.effects import RunOutcome, SetEffect
from smr.playbooks.expressions import Template, TemplateRuntimeError, compile_template
from smr.playbooks.fields import NonEmptyText, TemplateText
from smr.playbooks.steps.base import RunState, StepKind
from smr.playbooks.strict import StrictModel

_INT = re.compile(r"-?\d+")
_FLOAT = re.compile(r"-?\d+\.\d+")


class SetStep(StrictModel):
    values: dict[NonEmptyText, TemplateText] = Field(alias="set", min_length=1)


@dataclass(frozen=True)
class SetAttrs:
    step_path: str
    values: dict[str, Template]

    def run(self, state: RunState, *, pc: int) -> int | RunOutcome:
        context = state.context()
        try:
            values = {name: _typed(t.render(context)) for name, t in self.values.items()}
        except TemplateRuntimeError as exc:
            return state.fail(self.step_path, f"set: {exc.message}")
        attributes = {**state.contact.attributes, **values}
        state.contact = replace(state.contact, attributes=attributes)
        state.effects.append(SetEffect(values))
        state.note(self.step_path, "set", values=values)
        return pc + 1


def _typed(rendered: str) -> Any:
    # Rendering always yields text; keep numbers numeric so later comparisons behave.
    text = rendered.strip()
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return rendered


def _compile(step: SetStep, path: str) -> SetAttrs:
    return SetAttrs(path, {name: compile_template(v) for name, v in step.values.items()})


KIND = StepKind(
    key="set",
    model=SetStep,
    compile=_compile,
    models={"SetStep": ("Set step · 设置属性", "Set contact attributes. 设置客户属性。")},
    fields={"SetStep": {"set": ("Set · 设置", "Attribute name: value. 属性名: 值。")}},
)
