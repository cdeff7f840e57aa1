"""``notify_staff: {text, to}``: hand off to a human, on the staff channel (WeCom message/send).

``to`` says whom: ``owner`` (the default: the contact's owner staff), a list of staff userids,
or ``{tag: <staff tag id>}`` (every member of a WeCom 通讯录 tag). The choice travels in the
delivery's params: ``{"to": "owner"}``, ``{"touser": "a|b"}`` or ``{"totag": "3"}``; the staff
channel's adapter sends accordingly. Userids and tag ids are plain values, not templates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Discriminator, Field, Tag, WithJsonSchema

from smr.playbooks.effects import RunOutcome, SendEffect
from smr.playbooks.expressions import Template, TemplateRuntimeError, compile_template
from smr.playbooks.fields import STAFF_TAG_PATTERN, STAFF_USERID_PATTERN, TemplateText
from smr.playbooks.policies import STAFF_CHANNEL
from smr.playbooks.steps.base import RunState, StepKind
from smr.playbooks.strict import StrictModel

#: message/send takes up to 1,000 userids in one touser.
MAX_STAFF = 1000
#: A WeCom userid (1-64 characters); '|' separates them in touser, so it cannot be in one.
StaffUserId = Annotated[str, Field(min_length=1, max_length=64, pattern=STAFF_USERID_PATTERN)]


def _digits(value: Any) -> Any:
    # Ops write `tag: 3` as often as `tag: "3"`.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


StaffTagId = Annotated[
    str,
    BeforeValidator(_digits),
    Field(pattern=STAFF_TAG_PATTERN),
    WithJsonSchema(
        {
            "type": ["string", "integer"],
            "pattern": STAFF_TAG_PATTERN,
            "description": "A WeCom staff tag id (通讯录标签 tagid). 员工标签 ID。",
            "examples": ["3"],
        }
    ),
]


class StaffTag(StrictModel):
    tag: StaffTagId


def _recipients_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "to:owner"
    if isinstance(value, list):
        return "to:users"
    return "to:tag" if isinstance(value, dict | StaffTag) else None


StaffUsers = Annotated[list[StaffUserId], Field(min_length=1, max_length=MAX_STAFF)]
Recipients = Annotated[
    Annotated[Literal["owner"], Tag("to:owner")]
    | Annotated[StaffUsers, Tag("to:users")]
    | Annotated[StaffTag, Tag("to:tag")],
    Discriminator(
        _recipients_kind,
        custom_error_type="bad_recipients",
        custom_error_message="to is owner, a list of staff userids, or {tag: <staff tag id>}",
    ),
]
RECIPIENT_TAGS = ("to:owner", "to:users", "to:tag")


class NotifySpec(StrictModel):
    text: TemplateText
    to: Recipients = "owner"


class NotifyStaffStep(StrictModel):
    notify_staff: NotifySpec


@dataclass(frozen=True)
class NotifyStaff:
    step_path: str
    text: Template
    params: dict[str, str]

    def run(self, state: RunState, *, pc: int) -> int | RunOutcome:
        try:
            text = self.text.render(state.context())
        except TemplateRuntimeError as exc:
            return state.fail(self.step_path, f"notify_staff: {exc.message}")
        effect = SendEffect(self.step_path, STAFF_CHANNEL, "service", text, None, self.params)
        state.effects.append(effect)
        state.note(self.step_path, "notify", **self.params)
        return pc + 1


def params_of(to: str | list[str] | StaffTag) -> dict[str, str]:
    """The delivery params that say whom a notice goes to."""
    if isinstance(to, StaffTag):
        return {"totag": to.tag}
    if isinstance(to, list):
        return {"touser": "|".join(dict.fromkeys(to))}
    return {"to": "owner"}


def _compile(step: NotifyStaffStep, path: str) -> NotifyStaff:
    spec = step.notify_staff
    return NotifyStaff(path, compile_template(spec.text), params_of(spec.to))


KIND = StepKind(
    key="notify_staff",
    model=NotifyStaffStep,
    compile=_compile,
    models={
        "NotifyStaffStep": (
            "Notify staff step · 通知员工",
            "Hand off to staff: the contact's owner, listed staff or a staff tag. "
            "通知客户的负责员工、指定员工或员工标签。",
        ),
        "NotifySpec": (
            "Staff notice · 员工通知",
            "What to tell, and whom. 通知内容和接收人。",
        ),
        "StaffTag": (
            "Staff tag · 员工标签",
            "Every member of a WeCom staff tag. 通讯录标签下的所有成员。",
        ),
    },
    fields={
        "NotifyStaffStep": {
            "notify_staff": ("Notify staff · 通知员工", "Tell staff members. 通知员工。")
        },
        "NotifySpec": {
            "text": ("Text · 内容", "What to tell them. 通知内容。"),
            "to": (
                "To · 接收人",
                "owner (the contact's owner staff, default), a list of staff userids (up to "
                "1000), or {tag: <staff tag id>}. owner（默认，客户的负责员工）、员工 userid "
                "列表（最多 1000 个）或 {tag: 标签ID}。",
            ),
        },
        "StaffTag": {"tag": ("Tag id · 标签ID", "A WeCom staff tag id. 通讯录标签 ID。")},
    },
    union_tags=RECIPIENT_TAGS,
)
