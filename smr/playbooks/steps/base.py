"""What a step kind is, and the state a run's instructions work on.

A step kind is one module in this package that declares a ``StepKind``: the YAML key, the
pydantic model of the step (a ``StrictModel`` with that one key), how a step compiles to an
instruction, and the titles the JSON Schema shows. The instruction runs itself
(``Instruction.run``) against a ``RunState`` and says where the run goes next: the index of the
next instruction, or how the run ends or waits. Effects it decides (tags, attributes,
deliveries) go to ``RunState.effects``, what it did to ``RunState.trace``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar
from zoneinfo import ZoneInfo

from smr.playbooks.context import ContactView, EventView, RunView, build_context
from smr.playbooks.effects import Effect, Failed, RunOutcome, TraceEntry, TraceKind
from smr.playbooks.strict import StrictModel

#: A title and a description, in English and Chinese, for editors.
Doc = tuple[str, str]
M = TypeVar("M", bound=StrictModel)


@dataclass
class RunState:
    """One run while it executes: the contact as steps changed it, and what was decided."""

    contact: ContactView
    event: EventView
    trigger: EventView
    run: RunView
    now: datetime
    tz: ZoneInfo
    vars: Mapping[str, Any]
    effects: list[Effect] = field(default_factory=list)
    trace: list[TraceEntry] = field(default_factory=list)

    def context(self) -> dict[str, Any]:
        return build_context(
            contact=self.contact,
            event=self.event,
            trigger=self.trigger,
            run=self.run,
            now=self.now.astimezone(self.tz),
            vars=self.vars,
        )

    def note(self, step_path: str, kind: TraceKind, **detail: Any) -> None:
        self.trace.append(TraceEntry(step_path, kind, detail))

    def fail(self, step_path: str, reason: str) -> Failed:
        self.note(step_path, "error", reason=reason)
        return Failed(reason)


class Instruction(Protocol):
    """One compiled step. ``step_path`` (``steps[2].then[0]``) names the step it came from."""

    @property
    def step_path(self) -> str: ...

    def run(self, state: RunState, *, pc: int) -> int | RunOutcome:
        """Do the step; answer the next instruction's index, or the run's outcome."""
        ...


@dataclass(frozen=True)
class StepKind(Generic[M]):
    """A kind of step, as the registry in ``smr.playbooks.steps`` lists it."""

    key: str
    model: type[M]
    compile: Callable[[M, str], Instruction]
    #: Model class name → its title and description; field docs by model, then YAML key.
    models: Mapping[str, Doc]
    fields: Mapping[str, Mapping[str, Doc]]
    #: Tags of the discriminated unions inside the step (``wait:until``), which error
    #: locations leave out.
    union_tags: tuple[str, ...] = ()
