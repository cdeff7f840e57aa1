"""The step kinds a playbook may use: one module each, one line each in ``STEPS``.

``if`` is not among them: it is the language's own structure (``smr.playbooks.schema``,
``smr.playbooks.program``), compiled to jumps around the steps of its branches.
"""

from typing import Any

from smr.playbooks.steps import emit, notify, send, set_attrs, stop, tag, transfer, wait
from smr.playbooks.steps.base import Doc, Instruction, RunState, StepKind

STEPS: tuple[StepKind[Any], ...] = (
    tag.KIND,
    set_attrs.KIND,
    wait.KIND,
    send.KIND,
    notify.KIND,
    transfer.KIND,
    emit.KIND,
    stop.KIND,
)

__all__ = ["STEPS", "Doc", "Instruction", "RunState", "StepKind"]
