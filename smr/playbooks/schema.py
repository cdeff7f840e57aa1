"""The playbook file format (v1) as strict pydantic models.

Unions are discriminated by which key is present. Their tags are spelled ``step:send``,
``trigger:event`` …, never like a YAML key, so the loader can drop them from error locations.
"""

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Discriminator, Field, Tag, model_validator

from smr.playbooks.attachments import ATTACHMENT_TAGS
from smr.playbooks.fields import (
    CANONICAL_EVENT_TYPES,
    CronText,
    Duration,
    EventType,
    ExpressionText,
    NonEmptyText,
    PlaybookId,
    SegmentId,
)
from smr.playbooks.group_welcome import GroupWelcome
from smr.playbooks.steps import STEPS
from smr.playbooks.strict import StrictModel
from smr.subjects import ContactKind, Subject

TRIGGER_KEYS = ("event", "schedule")
#: The YAML key of each step kind, ``if`` included.
STEP_KEYS = (*(kind.key for kind in STEPS), "if")
_KIND_OF_MODEL: dict[type[StrictModel], str] = {kind.model: kind.key for kind in STEPS}


EventTypes = Annotated[
    Annotated[EventType, Tag("events:one")]
    | Annotated[list[EventType], Field(min_length=1, max_length=20), Tag("events:many")],
    Discriminator(lambda v: "events:many" if isinstance(v, list) else "events:one"),
]


class EventTrigger(StrictModel):
    """``event`` names one event type, or several (``[moment.liked, moment.commented]``): any
    of them starts a run. Or ``segment`` names a segment, and a customer entering it (``on:
    entered``) or leaving it (``on: exited``) starts a run (the ``segment.entered`` and
    ``segment.exited`` events SMR posts as memberships change)."""

    event: Annotated[EventTypes | None, Field(examples=list(CANONICAL_EVENT_TYPES))] = None
    segment: SegmentId | None = None
    on: Literal["entered", "exited"] = "entered"
    condition: ExpressionText | None = Field(default=None, alias="if")
    keywords: list[NonEmptyText] = Field(default_factory=list)
    #: One run per item of this list (``run.item``), e.g. per cycle SKU of an order.
    each: ExpressionText | None = None

    @model_validator(mode="after")
    def _event_or_segment(self) -> "EventTrigger":
        if self.event is not None and self.segment is not None:
            raise ValueError("a trigger names an event or a segment, not both")
        if self.event is None and self.segment is None:
            raise ValueError("trigger needs 'event', 'segment' or 'schedule'")
        if "on" in self.model_fields_set and self.segment is None:
            raise ValueError("on: entered or exited goes with segment")
        return self

    @property
    def events(self) -> tuple[str, ...]:
        if self.segment is not None:
            return (f"segment.{self.on}",)
        listed = [self.event] if isinstance(self.event, str) else (self.event or [])
        return tuple(dict.fromkeys(listed))


class Audience(StrictModel):
    #: Only the customers in this segment (``segments/``).
    segment: SegmentId | None = None
    tags_any: list[NonEmptyText] = Field(default_factory=list)
    tags_none: list[NonEmptyText] = Field(default_factory=list)
    condition: ExpressionText | None = Field(default=None, alias="if")


def _listed(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class GroupTarget(StrictModel):
    """The customer groups a schedule playbook runs for, one run per group (all when empty)."""

    owner: Annotated[list[NonEmptyText], BeforeValidator(_listed)] = Field(default_factory=list)
    name_contains: NonEmptyText | None = None
    tags_any: list[NonEmptyText] = Field(default_factory=list)
    tags_none: list[NonEmptyText] = Field(default_factory=list)


class ScheduleTrigger(StrictModel):
    """Each firing starts one run per ``audience`` contact, per group of ``groups``, or (with
    ``once``) one run for the corp."""

    schedule: CronText
    audience: Audience = Field(default_factory=Audience)
    groups: GroupTarget | None = None
    once: bool = False

    @model_validator(mode="after")
    def _one_target(self) -> "ScheduleTrigger":
        targets = [
            name
            for name, given in (
                ("audience", "audience" in self.model_fields_set),
                ("groups", self.groups is not None),
                ("once", self.once),
            )
            if given
        ]
        if len(targets) > 1:
            raise ValueError(
                f"a schedule reaches contacts (audience), groups or the corp (once: true), "
                f"not several: {', '.join(targets)}"
            )
        return self

    @property
    def subject(self) -> Subject:
        if self.once:
            return ContactKind.CORP
        return ContactKind.GROUP if self.groups is not None else ContactKind.PERSON


class IfStep(StrictModel):
    condition: ExpressionText = Field(alias="if")
    then: list["Step"] = Field(min_length=1)
    otherwise: list["Step"] = Field(default_factory=list, alias="else")


def _step_kind(value: Any) -> str | None:
    if isinstance(value, IfStep):
        return "step:if"
    if isinstance(value, StrictModel):
        return f"step:{_KIND_OF_MODEL[type(value)]}"
    if not isinstance(value, dict):
        return None
    if "if" in value:
        return "step:if"
    present = [key for key in STEP_KEYS if key in value]
    return f"step:{present[0]}" if len(present) == 1 else None


_VARIANTS = (
    *(Annotated[kind.model, Tag(f"step:{kind.key}")] for kind in STEPS),
    Annotated[IfStep, Tag("step:if")],
)

if TYPE_CHECKING:
    Step = StrictModel
else:
    Step = Annotated[
        Union[_VARIANTS],  # noqa: UP007 (the registry's models: a union built at run time)
        Discriminator(
            _step_kind,
            custom_error_type="bad_step",
            custom_error_message=f"a step needs exactly one of: {', '.join(STEP_KEYS)}",
        ),
    ]

IfStep.model_rebuild()


def _trigger_kind(value: Any) -> str | None:
    if isinstance(value, EventTrigger | ScheduleTrigger):
        return "trigger:event" if isinstance(value, EventTrigger) else "trigger:schedule"
    if isinstance(value, dict) and "schedule" in value:
        return "trigger:schedule"
    if isinstance(value, dict) and ("event" in value or "segment" in value):
        return "trigger:event"
    return None


Trigger = Annotated[
    Annotated[EventTrigger, Tag("trigger:event")]
    | Annotated[ScheduleTrigger, Tag("trigger:schedule")],
    Discriminator(
        _trigger_kind,
        custom_error_type="bad_trigger",
        custom_error_message="trigger needs 'event', 'segment' or 'schedule'",
    ),
]


class ExitRule(StrictModel):
    event: EventType
    condition: ExpressionText | None = Field(default=None, alias="if")


class Goal(StrictModel):
    """What a run is for: it converts when its contact's ``event`` (for which ``if`` holds)
    comes within ``within`` of the run's first sent message (``from: send``) or of its start
    (``from: start``)."""

    event: EventType
    within: Duration = timedelta(days=7)
    condition: ExpressionText | None = Field(default=None, alias="if")
    from_: Literal["send", "start"] = Field(default="send", alias="from")


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
    goal: Goal | None = None
    group_welcome: GroupWelcome | None = None

    @model_validator(mode="after")
    def _each_runs_side_by_side(self) -> "Playbook":
        if isinstance(self.trigger, EventTrigger) and self.trigger.each and self.mode != "parallel":
            raise ValueError(
                "trigger.each starts a run per item, side by side: it needs mode: parallel "
                '(end an item\'s older run with exit_on, e.g. if: "run.item in event.skus")'
            )
        return self


UNION_TAGS = (
    frozenset(
        [f"step:{key}" for key in STEP_KEYS]
        + ["trigger:event", "trigger:schedule", "events:one", "events:many"]
        + [tag for kind in STEPS for tag in kind.union_tags]
    )
    | ATTACHMENT_TAGS
)
