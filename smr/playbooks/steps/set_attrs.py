"""``set: {tier: 钻粉}``: set contact attributes. Values are templates, and a value that renders
as a number is stored as one. A name may be a template too (``"last_{{ run.item }}": …``): it
renders to the attribute's name, at most ``MAX_NAME`` characters."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from smr.playbooks.effects import RunOutcome, SetEffect
from smr.playbooks.expressions import (
    Template,
    TemplateCompileError,
    TemplateRuntimeError,
    compile_template,
    is_template,
)
from smr.playbooks.fields import NonEmptyText, TemplateText
from smr.playbooks.steps.base import RunState, StepKind
from smr.playbooks.strict import StrictModel

_INT = re.compile(r"-?\d+")
_FLOAT = re.compile(r"-?\d+\.\d+")


def _compiles(name: str) -> str:
    """A templated name compiles (it is checked at load, like any template)."""
    if is_template(name):
        try:
            compile_template(name)
        except TemplateCompileError as exc:
            raise ValueError(f"bad template in an attribute name: {exc}") from None
    return name


class SetStep(StrictModel):
    values: dict[Annotated[NonEmptyText, AfterValidator(_compiles)], TemplateText] = Field(
        alias="set", min_length=1
    )


#: The longest attribute name a templated name may render to.
MAX_NAME = 100


@dataclass(frozen=True)
class SetAttrs:
    step_path: str
    #: (the name, as a template when it is one; the value's template)
    values: tuple[tuple[str | Template, Template], ...]

    def run(self, state: RunState, *, pc: int) -> int | RunOutcome:
        context = state.context()
        try:
            values = {_name(n, context): _typed(t.render(context)) for n, t in self.values}
        except (TemplateRuntimeError, BadName) as exc:
            return state.fail(self.step_path, f"set: {exc}")
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


class BadName(Exception):
    """A templated attribute name rendered empty or too long."""


def _name(name: str | Template, context: dict[str, Any]) -> str:
    if isinstance(name, str):
        return name
    rendered = name.render(context).strip()
    if not rendered or len(rendered) > MAX_NAME:
        shown = rendered[:MAX_NAME]
        raise BadName(f"the name {name.source!r} gave {shown!r}: use 1-{MAX_NAME} characters")
    return rendered


def _compile(step: SetStep, path: str) -> SetAttrs:
    return SetAttrs(
        path,
        tuple(
            (compile_template(name) if is_template(name) else name, compile_template(value))
            for name, value in step.values.items()
        ),
    )


KIND = StepKind(
    key="set",
    model=SetStep,
    compile=_compile,
    models={"SetStep": ("Set step · 设置属性", "Set contact attributes. 设置客户属性。")},
    fields={"SetStep": {"set": ("Set · 设置", "Attribute name: value. 属性名: 值。")}},
)
