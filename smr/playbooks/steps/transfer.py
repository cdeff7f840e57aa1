"""``transfer: {to, message, resigned}``: move the customer to another staff member (客户继承).

The step plans a delivery on the internal channel ``wecom_transfer``: WeCom's
externalcontact/transfer_customer (在职继承), or resigned/transfer_customer (离职继承) with
``resigned: true``, from the contact's owner staff to ``to``. WeCom finishes the transfer
within 24 h, or the customer refuses it: the delivery is ``awaiting`` until then, ``sent`` once
the takeover is done (the contact's ``wecom_owner`` becomes ``to``), ``failed`` otherwise.

The delivery's params: ``{"to": <takeover userid>, "resigned": "true" | "false"}``; its text is
the message WeCom shows the customer (transfer_success_msg, 在职 only; WeCom's default when
empty).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from smr.playbooks.effects import RunOutcome, SendEffect
from smr.playbooks.steps.base import RunState, StepKind
from smr.playbooks.steps.notify import StaffUserId
from smr.playbooks.strict import StrictModel

#: The internal channel the step plans on (WeCom's transfer APIs).
TRANSFER_CHANNEL = "wecom_transfer"
#: transfer_success_msg: at most 200 characters.
MESSAGE_CHARS = 200
TransferMessage = Annotated[str, Field(min_length=1, max_length=MESSAGE_CHARS)]


class TransferSpec(StrictModel):
    to: StaffUserId
    message: TransferMessage | None = None
    resigned: bool = False


class TransferStep(StrictModel):
    transfer: TransferSpec


def transfer_effect(step_path: str, *, to: str, message: str | None, resigned: bool) -> SendEffect:
    """The delivery a transfer plans (the step's, and the API's)."""
    params = {"to": to, "resigned": "true" if resigned else "false"}
    return SendEffect(step_path, TRANSFER_CHANNEL, "service", message, None, params)


@dataclass(frozen=True)
class Transfer:
    step_path: str
    to: str
    message: str | None
    resigned: bool

    def run(self, state: RunState, *, pc: int) -> int | RunOutcome:
        effect = transfer_effect(
            self.step_path, to=self.to, message=self.message, resigned=self.resigned
        )
        state.effects.append(effect)
        state.note(self.step_path, "send", channel=TRANSFER_CHANNEL, **effect.params)
        return pc + 1


def _compile(step: TransferStep, path: str) -> Transfer:
    spec = step.transfer
    return Transfer(path, spec.to, spec.message, spec.resigned)


KIND = StepKind(
    key="transfer",
    model=TransferStep,
    compile=_compile,
    models={
        "TransferStep": (
            "Transfer step · 客户转接",
            "Move the customer from the owner staff to another staff member (WeCom 客户继承). "
            "把客户从负责员工转给另一名员工（在职/离职继承）。",
        ),
        "TransferSpec": (
            "Transfer · 转接",
            "Who takes the customer over, and what WeCom tells the customer. 接替员工和提示语。",
        ),
    },
    fields={
        "TransferStep": {"transfer": ("Transfer · 转接", "The transfer to make. 要做的转接。")},
        "TransferSpec": {
            "to": ("Takeover · 接替员工", "The takeover staff's userid. 接替员工的 userid。"),
            "message": (
                "Message · 转接提示",
                "What WeCom shows the customer (在职 only, up to 200 characters; WeCom's "
                "default when left out). 转接成功后发给客户的提示语，最多 200 字（仅在职继承）。",
            ),
            "resigned": (
                "Resigned · 离职继承",
                "The owner staff has left: use WeCom's 离职继承 APIs. 负责员工已离职时设为 true。",
            ),
        },
    },
)
