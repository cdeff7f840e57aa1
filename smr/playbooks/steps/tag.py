"""``tag: {add: [...], remove: [...]}``: change the contact's tags.

Tag names are templates (``渠道:{{ trigger.data.state }}``); plain names render as-is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from pydantic import Field, model_validator

from smr.playbooks.effects import RunOutcome, TagEffect
from smr.playbooks.expressions import Template, TemplateRuntimeError, compile_template
from smr.playbooks.fields import TemplateText
from smr.playbooks.steps.base import RunState, StepKind
from smr.playbooks.strict import StrictModel


class TagChange(StrictModel):
    add: list[TemplateText] = Field(default_factory=list)
    remove: list[TemplateText] = Field(default_factory=list)

    @model_validator(mode="after")
    def _not_empty(self) -> TagChange:
        if not self.add and not self.remove:
            raise ValueError("tag needs a non-empty 'add' or 'remove'")
        return self


class TagStep(StrictModel):
    tag: TagChange


@dataclass(frozen=True)
class Tag:
    step_path: str
    add: tuple[Template, ...]
    remove: tuple[Template, ...]

    def run(self, state: RunState, *, pc: int) -> int | RunOutcome:
        context = state.context()
        try:
            add, remove = (
                [t.render(context).strip() for t in names] for names in (self.add, self.remove)
            )
        except TemplateRuntimeError as exc:
            return state.fail(self.step_path, f"tag: {exc.message}")
        add, remove = [t for t in dict.fromkeys(add) if t], [t for t in remove if t]
        kept = [tag for tag in state.contact.tags if tag not in remove]
        state.contact = replace(state.contact, tags=kept + [tag for tag in add if tag not in kept])
        state.effects.append(TagEffect(self.step_path, tuple(add), tuple(remove)))
        state.note(self.step_path, "tag", add=add, remove=remove)
        return pc + 1


def _compile(step: TagStep, path: str) -> Tag:
    change = step.tag
    add, remove = (tuple(map(compile_template, names)) for names in (change.add, change.remove))
    return Tag(path, add, remove)


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
        },
    },
)
