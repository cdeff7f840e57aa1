"""``wait: 3d``, ``wait: "{{ 25 * event.quantity_of('X') }}d"`` or ``wait: {until: "10:00"}``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any

from pydantic import Discriminator, Tag, WithJsonSchema

from smr.playbooks.effects import Failed, RunOutcome, Waiting
from smr.playbooks.expressions import (
    Template,
    TemplateRuntimeError,
    compile_template,
    is_template,
)
from smr.playbooks.fields import ClockTime, Duration, TemplateText
from smr.playbooks.steps.base import RunState, StepKind
from smr.playbooks.strict import StrictModel
from smr.playbooks.timespec import DurationTooLong, next_wall_time, parse_duration


class WaitUntil(StrictModel):
    until: ClockTime


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


@dataclass(frozen=True)
class Wait:
    """Exactly one of ``duration``, ``template`` and ``until`` is set."""

    step_path: str
    duration: timedelta | None = None
    template: Template | None = None
    until: time | None = None

    def run(self, state: RunState, *, pc: int) -> int | RunOutcome:
        wake_at = self._wake_at(state)
        if isinstance(wake_at, Failed):
            return wake_at
        wake_at = wake_at.astimezone(UTC)
        # measured_from: when the run reached the wait (at ingest, when the event was received).
        measured_from = state.now.astimezone(UTC).isoformat()
        state.note(self.step_path, "wait", wake_at=wake_at.isoformat(), measured_from=measured_from)
        return Waiting(pc=pc + 1, wake_at=wake_at)

    def _wake_at(self, state: RunState) -> datetime | Failed:
        if self.until is not None:
            return next_wall_time(state.now, self.until, tz=state.tz)
        if self.duration is not None:
            return state.now + self.duration
        delay = self._rendered_delay(state)
        return delay if isinstance(delay, Failed) else state.now + delay

    def _rendered_delay(self, state: RunState) -> timedelta | Failed:
        assert self.template is not None
        try:
            rendered = self.template.render(state.context())
        except TemplateRuntimeError as exc:
            return state.fail(self.step_path, f"wait: {exc.message}")
        try:
            return parse_duration(rendered)
        except DurationTooLong as exc:
            return state.fail(self.step_path, f"wait: {exc}")
        except ValueError:
            return state.fail(self.step_path, f"wait rendered '{rendered}', not a duration")


def _compile(step: WaitStep, path: str) -> Wait:
    value = step.wait
    if isinstance(value, timedelta):
        return Wait(path, duration=value)
    if isinstance(value, WaitUntil):
        return Wait(path, until=value.until)
    return Wait(path, template=compile_template(value))


KIND = StepKind(
    key="wait",
    model=WaitStep,
    compile=_compile,
    models={
        "WaitStep": ("Wait step · 等待", "Pause the run. 暂停一段时间或到某个时刻。"),
        "WaitUntil": (
            "Wait until · 等到时刻",
            "Wait for the next local clock time. 等到下一个该时刻。",
        ),
    },
    fields={
        "WaitStep": {
            "wait": (
                "Wait · 等待",
                "A duration like 3d, a template rendering to one, or {until: HH:MM}. "
                "等待时长或时刻。",
            )
        },
        "WaitUntil": {"until": ("Until · 直到", "The next local time like 10:00. 下一个该时刻。")},
    },
    union_tags=("wait:duration", "wait:template", "wait:until"),
)
