"""``tag: {add: [...], remove: [...]}``: change the contact's tags.

Tag names are templates (``渠道:{{ trigger.data.state }}``); plain names render as-is.
``add_each`` / ``remove_each``: an expression giving a list, one tag per item
(``add_each: "event.skus | map('lower') | list"``), at most ``MAX_EACH``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pydantic import Field, model_validator

from smr.playbooks.effects import RunOutcome, TagEffect
from smr.playbooks.expressions import (
    Expression,
    NotAList,
    Template,
    TemplateRuntimeError,
    compile_expression,
    compile_template,
    items_of,
)
from smr.playbooks.fields import ExpressionText, TemplateText
from smr.playbooks.steps.base import RunState, StepKind
from smr.playbooks.strict import StrictModel

#: Tags one ``add_each`` or ``remove_each`` gives at most, and the longest tag kept.
MAX_EACH = 100
MAX_TAG = 100


class TagChange(StrictModel):
    add: list[TemplateText] = Field(default_factory=list)
    remove: list[TemplateText] = Field(default_factory=list)
    add_each: ExpressionText | None = None
    remove_each: ExpressionText | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> TagChange:
        if not (self.add or self.remove or self.add_each or self.remove_each):
            raise ValueError(
                "tag needs a non-empty 'add' or 'remove' (or 'add_each', 'remove_each')"
            )
        return self


class TagStep(StrictModel):
    tag: TagChange


@dataclass(frozen=True)
class Tag:
    step_path: str
    add: tuple[Template, ...]
    remove: tuple[Template, ...]
    add_each: Expression | None = None
    remove_each: Expression | None = None

    def run(self, state: RunState, *, pc: int) -> int | RunOutcome:
        context = state.context()
        try:
            add, remove = (
                [t.render(context).strip() for t in names] for names in (self.add, self.remove)
            )
            add += _each(self.add_each, context)
            remove += _each(self.remove_each, context)
        except (TemplateRuntimeError, NotAList) as exc:
            return state.fail(self.step_path, f"tag: {exc}")
        add, remove = [t for t in dict.fromkeys(add) if t], [t for t in remove if t]
        kept = [tag for tag in state.contact.tags if tag not in remove]
        state.contact = replace(state.contact, tags=kept + [tag for tag in add if tag not in kept])
        state.effects.append(TagEffect(self.step_path, tuple(add), tuple(remove)))
        state.note(self.step_path, "tag", add=add, remove=remove)
        return pc + 1


def _each(expression: Expression | None, context: dict[str, Any]) -> list[str]:
    """The tags a list expression gives (see ``items_of``)."""
    if expression is None:
        return []
    return items_of(expression, context, longest=MAX_TAG, most=MAX_EACH)


def _compile(step: TagStep, path: str) -> Tag:
    change = step.tag
    add, remove = (tuple(map(compile_template, names)) for names in (change.add, change.remove))
    each = [compile_expression(e) if e else None for e in (change.add_each, change.remove_each)]
    return Tag(path, add, remove, *each)


KIND = StepKind(
    key="tag",
    model=TagStep,
    compile=_compile,
    models={
        "TagStep": ("Tag step · 打标签", "Add or remove contact tags. 添加或移除客户标签。"),
        "TagChange": (
            "Tag change · 标签变更",
            "Tags to add and tags to remove. 要加和要去掉的标签。",
        ),
    },
    fields={
        "TagStep": {"tag": ("Tag · 标签", "Tags to add or remove. 要加或去掉的标签。")},
        "TagChange": {
            "add": ("Add · 添加", "Tags to add. 添加的标签。"),
            "remove": ("Remove · 移除", "Tags to remove. 移除的标签。"),
            "add_each": (
                "Add each · 逐项添加",
                "A list expression: one tag per item. 列表表达式：每一项加一个标签。",
            ),
            "remove_each": (
                "Remove each · 逐项移除",
                "A list expression: remove one tag per item. 列表表达式：每一项去掉一个标签。",
            ),
        },
    },
)
