"""What running a playbook decides: effects for the caller to apply, a trace, and an outcome."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from smr.content import Attachment

TraceKind = Literal["tag", "set", "send", "notify", "emit", "branch", "wait", "stop", "error"]


@dataclass(frozen=True)
class TagEffect:
    step_path: str
    add: tuple[str, ...]
    remove: tuple[str, ...]


@dataclass(frozen=True)
class SetEffect:
    values: dict[str, Any]


@dataclass(frozen=True)
class SendEffect:
    """A delivery to schedule (a ``notify_staff`` is one on the staff channel); with ``error``
    set the caller records it as skipped."""

    step_path: str
    channel: str
    category: Literal["marketing", "service"]
    text: str | None
    template_code: str | None
    params: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class EmitEffect:
    """An event to post for a contact (``contact``: how ``POST /v1/events`` names one)."""

    step_path: str
    type: str
    contact: dict[str, str]
    data: dict[str, Any]


Effect = TagEffect | SetEffect | SendEffect | EmitEffect


@dataclass(frozen=True)
class TraceEntry:
    step_path: str
    kind: TraceKind
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Completed:
    pass


@dataclass(frozen=True)
class Stopped:
    step_path: str


@dataclass(frozen=True)
class Waiting:
    """Resume at instruction ``pc`` at ``wake_at`` (aware, UTC)."""

    pc: int
    wake_at: datetime


@dataclass(frozen=True)
class Failed:
    reason: str


RunOutcome = Completed | Stopped | Waiting | Failed


@dataclass(frozen=True)
class Execution:
    effects: list[Effect]
    trace: list[TraceEntry]
    outcome: RunOutcome
