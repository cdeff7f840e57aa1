"""The playbook file format (v1) as strict pydantic models.

Unions are discriminated by which key is present. Their tags are spelled ``step:send``,
``trigger:event`` …, never like a YAML key, so the loader can drop them from error locations.
"""

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
    model_validator,
)

from smr.playbooks.expressions import is_template
from smr.playbooks.fields import (
    ChannelName,
    ClockTime,
    CronText,
    Duration,
    EventType,
    ExpressionText,
    NonEmptyText,
    PlaybookId,
    TemplateText,
)

STEP_KEYS = ("tag", "set", "wait", "send", "if", "notify_staff", "stop")
TRIGGER_KEYS = ("event", "schedule")


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventTrigger(StrictModel):
    event: EventType
    condition: ExpressionText | None = Field(default=None, alias="if")
    keywords: list[NonEmptyText] = Field(default_factory=list)


class Audience(StrictModel):
    tags_any: list[NonEmptyText] = Field(default_factory=list)
    tags_none: list[NonEmptyText] = Field(default_factory=list)
    condition: ExpressionText | None = Field(default=None, alias="if")


class ScheduleTrigger(StrictModel):
    schedule: CronText
    audience: Audience = Field(default_factory=Audience)


class TagChange(StrictModel):
    add: list[TemplateText] = Field(default_factory=list)
    remove: list[TemplateText] = Field(default_factory=list)

    @model_validator(mode="after")
    def _not_empty(self) -> "TagChange":
        if not self.add and not self.remove:
            raise ValueError("tag needs a non-empty 'add' or 'remove'")
        return self


class WaitUntil(StrictModel):
    until: ClockTime


class SendSpec(StrictModel):
    channel: ChannelName
    category: Literal["marketing", "service"] = "marketing"
    text: TemplateText | None = None
    template: NonEmptyText | None = None
    params: dict[str, TemplateText] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _has_content(self) -> "SendSpec":
        if self.text is None and self.template is None:
            raise ValueError("send needs 'text' or a vendor 'template'")
        return self


class NotifySpec(StrictModel):
    text: TemplateText


class TagStep(StrictModel):
    tag: TagChange


class SetStep(StrictModel):
    values: dict[NonEmptyText, TemplateText] = Field(alias="set", min_length=1)


def _wait_kind(value: Any) -> str | None:
    if isinstance(value, timedelta):
        return "wait:duration"
    if isinstance(value, str):
        return "wait:template" if is_template(value) else "wait:duration"
    return "wait:until" if isinstance(value, dict | WaitUntil) else None


_TEMPLATED_DURATION = WithJsonSchema(
    {
        "type": "string",
        "pattern": r"\{[{%]",
        "description": "A template that renders to a duration. 渲染为时长的模板。",
        "examples": ["{{ 25 * event.quantity_of('FACE-WASH') }}d"],
    }
)

WaitValue = Annotated[
    Annotated[Duration, Tag("wait:duration")]
    | Annotated[TemplateText, Tag("wait:template"), _TEMPLATED_DURATION]
    | Annotated[WaitUntil, Tag("wait:until")],
    Discriminator(
        _wait_kind,
        custom_error_type="bad_wait",
        custom_error_message="wait takes a duration like 3d, a template, or {until: HH:MM}",
    ),
]


class WaitStep(StrictModel):
    wait: WaitValue


class SendStep(StrictModel):
    send: SendSpec


class IfStep(StrictModel):
    condition: ExpressionText = Field(alias="if")
    then: list["Step"] = Field(min_length=1)
    otherwise: list["Step"] = Field(default_factory=list, alias="else")


class NotifyStaffStep(StrictModel):
    notify_staff: NotifySpec


class StopStep(StrictModel):
    # `- stop:` (null) reads as naturally as `- stop: {}`.
    stop: Annotated[
        dict[str, Any],
        BeforeValidator(lambda v: {} if v is None else v),
        WithJsonSchema({"type": ["object", "null"], "maxProperties": 0}),
    ] = Field(default_factory=dict, max_length=0)


def _step_kind(value: Any) -> str | None:
    if isinstance(value, StrictModel):
        return f"step:{_STEP_TYPES[type(value)]}"
    if not isinstance(value, dict):
        return None
    if "if" in value:
        return "step:if"
    present = [key for key in STEP_KEYS if key in value]
    return f"step:{present[0]}" if len(present) == 1 else None


Step = Annotated[
    Annotated[TagStep, Tag("step:tag")]
    | Annotated[SetStep, Tag("step:set")]
    | Annotated[WaitStep, Tag("step:wait")]
    | Annotated[SendStep, Tag("step:send")]
    | Annotated[IfStep, Tag("step:if")]
    | Annotated[NotifyStaffStep, Tag("step:notify_staff")]
    | Annotated[StopStep, Tag("step:stop")],
    Discriminator(
        _step_kind,
        custom_error_type="bad_step",
        custom_error_message=f"a step needs exactly one of: {', '.join(STEP_KEYS)}",
    ),
]

IfStep.model_rebuild()

_STEP_TYPES: dict[type[StrictModel], str] = {
    TagStep: "tag",
    SetStep: "set",
    WaitStep: "wait",
    SendStep: "send",
    IfStep: "if",
    NotifyStaffStep: "notify_staff",
    StopStep: "stop",
}


def _trigger_kind(value: Any) -> str | None:
    if isinstance(value, EventTrigger | ScheduleTrigger):
        return "trigger:event" if isinstance(value, EventTrigger) else "trigger:schedule"
    if isinstance(value, dict) and "schedule" in value:
        return "trigger:schedule"
    return "trigger:event" if isinstance(value, dict) and "event" in value else None


Trigger = Annotated[
    Annotated[EventTrigger, Tag("trigger:event")]
    | Annotated[ScheduleTrigger, Tag("trigger:schedule")],
    Discriminator(
        _trigger_kind,
        custom_error_type="bad_trigger",
        custom_error_message="trigger needs either 'event' or 'schedule'",
    ),
]


class ExitRule(StrictModel):
    event: EventType
    condition: ExpressionText | None = Field(default=None, alias="if")


class Playbook(StrictModel):
    id: PlaybookId
    name: NonEmptyText
    enabled: bool = True
    mode: Literal["single", "restart", "parallel"] = "single"
    cooldown: Duration = timedelta(0)
    delivery: Literal["live", "dry_run"] = "live"
    trigger: Trigger
    steps: list[Step] = Field(min_length=1)
    exit_on: list[ExitRule] = Field(default_factory=list)


UNION_TAGS = frozenset(
    [f"step:{key}" for key in STEP_KEYS]
    + ["trigger:event", "trigger:schedule", "wait:duration", "wait:template", "wait:until"]
)
