"""``notify_staff: {text}``: hand off to a human, on the staff channel (WeCom message/send to
the contact's owner staff)."""

from __future__ import annotations

from dataclasses import dataclass

from smr.playbooks.effects import RunOutcome, SendEffect
from smr.playbooks.expressions import Template, TemplateRuntimeError, compile_template
from smr.playbooks.fields import TemplateText
from smr.playbooks.policies import STAFF_CHANNEL
from smr.playbooks.steps.base import RunState, StepKind
from smr.playbooks.strict import StrictModel


class NotifySpec(StrictModel):
    text: TemplateText


class NotifyStaffStep(StrictModel):
    notify_staff: NotifySpec


@dataclass(frozen=True)
class NotifyStaff:
    step_path: str
    text: Template

    def run(self, state: RunState, *, pc: int) -> int | RunOutcome:
        try:
            text = self.text.render(state.context())
        except TemplateRuntimeError as exc:
            return state.fail(self.step_path, f"notify_staff: {exc.message}")
        state.effects.append(SendEffect(self.step_path, STAFF_CHANNEL, "service", text, None))
        state.note(self.step_path, "notify")
        return pc + 1


def _compile(step: NotifyStaffStep, path: str) -> NotifyStaff:
    return NotifyStaff(path, compile_template(step.notify_staff.text))


KIND = StepKind(
    key="notify_staff",
    model=NotifyStaffStep,
    compile=_compile,
    models={
        "NotifyStaffStep": (
            "Notify staff step · 通知员工",
            "Hand off to the contact's owner staff. 通知客户的负责员工。",
        ),
        "NotifySpec": ("Staff notice · 员工通知", "What to tell the staff member. 通知内容。"),
    },
    fields={
        "NotifyStaffStep": {
            "notify_staff": ("Notify staff · 通知员工", "Tell the owner staff. 通知负责员工。")
        },
        "NotifySpec": {"text": ("Text · 内容", "What to tell them. 通知内容。")},
    },
)
