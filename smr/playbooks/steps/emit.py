"""``emit``: post an event for a contact, this one or another (a referral credits the inviter
the channel code's ``state`` names), to be processed like any event.

```yaml
- emit:
    type: referral.succeeded
    to: {shop_customer_id: "{{ trigger.data.state | replace('ref-', '') }}"}
    data: {invitee: "{{ contact.id }}"}
```

``to`` names the contact as an event does (``id``, ``phone``, ``wecom_userid``,
``shop_customer_id``; templates); one nobody knows yet is created when the event is
processed. A ``to`` that renders to no identity, or to a phone that is not one, posts nothing
(the run log says why) and the run goes on. An event posted by a run that an emitted event
started counts one more hop; at ``MAX_HOPS`` nothing more is posted, so playbooks that emit to
each other cannot loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field, model_validator

from smr import phones
from smr.playbooks.effects import EmitEffect, RunOutcome
from smr.playbooks.expressions import Template, TemplateRuntimeError, compile_template
from smr.playbooks.fields import EventType, NonEmptyText, TemplateText
from smr.playbooks.steps.base import RunState, StepKind
from smr.playbooks.strict import StrictModel

#: The longest identity an event may name (``smr.schemas.Key``).
MAX_KEY = 200
#: How many emits deep a chain of emitted events may go.
MAX_HOPS = 5
#: Where an emitted event says who posted it: ``{"run_id", "event_id", "hops"}``.
EMITTED_BY = "emitted_by"


class EmitTarget(StrictModel):
    id: TemplateText | None = None
    phone: TemplateText | None = None
    wecom_userid: TemplateText | None = None
    shop_customer_id: TemplateText | None = None

    @model_validator(mode="after")
    def _names_someone(self) -> EmitTarget:
        if not (self.id or self.phone or self.wecom_userid or self.shop_customer_id):
            raise ValueError("to needs one of id, phone, wecom_userid, shop_customer_id")
        return self


class EmitSpec(StrictModel):
    type: EventType
    to: EmitTarget
    data: dict[NonEmptyText, TemplateText] = Field(default_factory=dict)


class EmitStep(StrictModel):
    emit: EmitSpec


@dataclass(frozen=True)
class Emit:
    step_path: str
    type: str
    to: dict[str, Template]
    data: dict[str, Template]

    def run(self, state: RunState, *, pc: int) -> int | RunOutcome:
        context = state.context()
        try:
            to = {key: t.render(context).strip() for key, t in self.to.items()}
            data: dict[str, Any] = {key: t.render(context) for key, t in self.data.items()}
        except TemplateRuntimeError as exc:
            return state.fail(self.step_path, f"emit: {exc.message}")
        hops = _hops(state) + 1
        if hops > MAX_HOPS:
            state.note(
                self.step_path, "emit", type=self.type, posted=False, reason=f"{MAX_HOPS} hops"
            )
            return pc + 1
        named, reason = _named(to)
        if reason is not None:
            state.note(self.step_path, "emit", type=self.type, posted=False, reason=reason)
            return pc + 1
        data[EMITTED_BY] = {"run_id": str(state.run.id), "event_id": state.event.id, "hops": hops}
        state.effects.append(EmitEffect(self.step_path, self.type, named, data))
        state.note(self.step_path, "emit", type=self.type, posted=True, to=sorted(named))
        return pc + 1


def _named(to: dict[str, str]) -> tuple[dict[str, str], str | None]:
    """The contact as an event names it (a phone in its stored form), or why it names none:
    the rules of ``smr.schemas.ContactRef``."""
    named = {key: value for key, value in to.items() if value}
    if not named:
        return named, "to names nobody (every identity rendered empty)"
    if too_long := [key for key, value in named.items() if len(value) > MAX_KEY]:
        return named, f"{too_long[0]} is over {MAX_KEY} characters"
    if "phone" in named:
        try:
            named["phone"] = phones.normalise(named["phone"])
        except phones.NotAPhone as exc:
            return named, f"phone: {exc}"
    return named, None


def _hops(state: RunState) -> int:
    emitted = state.trigger.data.get(EMITTED_BY)
    hops = emitted.get("hops") if isinstance(emitted, dict) else None
    return hops if isinstance(hops, int) else 0


def _compile(step: EmitStep, path: str) -> Emit:
    spec = step.emit
    to = {k: compile_template(v) for k, v in spec.to.model_dump(exclude_none=True).items()}
    data = {k: compile_template(v) for k, v in spec.data.items()}
    return Emit(path, spec.type, to, data)


KIND = StepKind(
    key="emit",
    model=EmitStep,
    compile=_compile,
    models={
        "EmitStep": ("Emit step · 发出事件", "Post an event for a contact. 给某个客户记一个事件。"),
        "EmitSpec": (
            "Emit · 事件",
            "The event's type, whom it is for, its data. 类型、对象、数据。",
        ),
        "EmitTarget": (
            "To · 对象",
            "The contact, named as an event names one. 像事件里一样写明是哪个客户。",
        ),
    },
    fields={
        "EmitStep": {"emit": ("Emit · 发出事件", "The event to post. 要记的事件。")},
        "EmitSpec": {
            "type": ("Type · 类型", "The event type. 事件类型。"),
            "to": ("To · 对象", "Whom the event is for. 给哪个客户。"),
            "data": ("Data · 数据", "Field: template. 字段：模板。"),
        },
        "EmitTarget": {
            "id": ("Id · 客户编号", "An SMR contact id. SMR 客户编号。"),
            "phone": ("Phone · 手机号", "A phone number. 手机号。"),
            "wecom_userid": (
                "WeCom id · 企业微信 ID",
                "A WeCom external userid. 企业微信客户 ID。",
            ),
            "shop_customer_id": ("Shop id · 店铺客户 ID", "The shop's customer id. 店铺客户 ID。"),
        },
    },
)
