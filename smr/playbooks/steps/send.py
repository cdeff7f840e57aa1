"""``send: {channel, category, text | template + params, attachments}``: a message to the
contact (or, in a group's or the corp's run, into the group or onto Moments)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from pydantic import Field, model_validator

from smr.playbooks.attachments import Attachments, CompiledAttachment, compile_attachments
from smr.playbooks.effects import RunOutcome, SendEffect
from smr.playbooks.expressions import Template, TemplateRuntimeError, compile_template
from smr.playbooks.fields import ChannelName, NonEmptyText, TemplateText
from smr.playbooks.steps.base import RunState, StepKind
from smr.playbooks.strict import StrictModel

Category = Literal["marketing", "service"]


class SendSpec(StrictModel):
    channel: ChannelName
    category: Category = "marketing"
    text: TemplateText | None = None
    template: NonEmptyText | None = None
    params: dict[str, TemplateText] = Field(default_factory=dict)
    attachments: Attachments = Field(default_factory=list)

    @model_validator(mode="after")
    def _has_content(self) -> SendSpec:
        if self.text is None and self.template is None and not self.attachments:
            raise ValueError("send needs 'text', 'attachments' or a vendor 'template'")
        return self


class SendStep(StrictModel):
    send: SendSpec


@dataclass(frozen=True)
class Send:
    step_path: str
    channel: str
    category: Category
    text: Template | None
    template_code: str | None
    params: dict[str, Template]
    attachments: tuple[CompiledAttachment, ...] = ()

    def run(self, state: RunState, *, pc: int) -> int | RunOutcome:
        context = state.context()
        base = SendEffect(
            self.step_path, self.channel, self.category, text=None, template_code=self.template_code
        )
        try:
            text = self.text.render(context) if self.text else None
            params = {name: t.render(context) for name, t in self.params.items()}
            attached = tuple(a.render(context) for a in self.attachments)
            effect = replace(base, text=text, params=params, attachments=attached)
        except TemplateRuntimeError as exc:
            effect = replace(base, error=f"template_error: {exc.message}")
        state.effects.append(effect)
        detail: dict[str, object] = {
            "channel": effect.channel,
            "category": effect.category,
            "error": effect.error,
        }
        if effect.attachments:
            detail["attachments"] = [str(a.kind) for a in effect.attachments]
        state.note(self.step_path, "send", **detail)
        return pc + 1


def _compile(step: SendStep, path: str) -> Send:
    spec = step.send
    text = compile_template(spec.text) if spec.text is not None else None
    params = {name: compile_template(v) for name, v in spec.params.items()}
    attached = compile_attachments(spec.attachments)
    return Send(path, spec.channel, spec.category, text, spec.template, params, attached)


KIND = StepKind(
    key="send",
    model=SendStep,
    compile=_compile,
    models={
        "SendStep": ("Send step · 发送消息", "Send a message to the contact. 给客户发消息。"),
        "SendSpec": (
            "Message · 消息",
            "Channel, category and content of a message. 渠道、类别和内容。",
        ),
    },
    fields={
        "SendStep": {"send": ("Send · 发送", "The message to send. 要发送的消息。")},
        "SendSpec": {
            "channel": ("Channel · 渠道", "Where to send. 发送渠道。"),
            "category": (
                "Category · 类别",
                "marketing is capped and held in quiet hours; service (transactional) is not. "
                "营销消息受频次和免打扰限制，服务消息不受。",
            ),
            "text": ("Text · 文本", "The message text. 消息内容。"),
            "template": (
                "Vendor template · 模板编号",
                "A vendor template code, e.g. for SMS. 短信模板。",
            ),
            "params": ("Template params · 模板参数", "Values for the vendor template. 模板变量。"),
            "attachments": (
                "Attachments · 附件",
                "Up to 9 pictures, links, mini-program cards, videos or files. 最多 9 个附件。",
            ),
        },
    },
)
