"""notify_staff.to and the transfer step: what they compile to, and their mistakes reported at
file:line:column with the field path."""

from textwrap import dedent

import pytest

from smr.playbooks import load_text
from smr.playbooks.steps.notify import NotifySpec, StaffTag, params_of
from smr.playbooks.steps.transfer import TRANSFER_CHANNEL, transfer_effect
from tests.unit.playbooks.playbook_support import CHANNELS

HEAD = """\
id: staff
name: 员工
trigger:
  event: contact.added
steps:
"""
Problem = tuple[int, int, str, str]


def _problems(steps: str) -> list[Problem]:
    _, errors = load_text(HEAD + dedent(steps), filename="pb.yaml", channels=CHANNELS)
    return [(e.line, e.column, e.path, e.message) for e in errors]


@pytest.mark.parametrize(
    ("to", "params"),
    [
        ("owner", {"to": "owner"}),
        (["wangwu", "zhaoliu", "wangwu"], {"touser": "wangwu|zhaoliu"}),
        (StaffTag(tag="3"), {"totag": "3"}),
    ],
    ids=["owner", "users", "tag"],
)
def test_notify_staff_to_becomes_the_delivery_params(to: object, params: dict[str, str]) -> None:
    spec = NotifySpec.model_validate({"text": "hi", "to": to})

    assert params_of(spec.to) == params


def test_notify_staff_defaults_to_the_owner_and_takes_a_numeric_tag() -> None:
    assert NotifySpec.model_validate({"text": "hi"}).to == "owner"
    assert NotifySpec.model_validate({"text": "hi", "to": {"tag": 7}}).to == StaffTag(tag="7")


def test_a_transfer_plans_a_service_delivery_on_the_transfer_channel() -> None:
    effect = transfer_effect("steps[0]", to="lisi", message="你好", resigned=True)

    assert (effect.channel, effect.category, effect.text) == (TRANSFER_CHANNEL, "service", "你好")
    assert effect.params == {"to": "lisi", "resigned": "true"}


def test_good_steps_load() -> None:
    steps = """\
      - notify_staff: {text: hi, to: [wangwu]}
      - notify_staff: {text: hi, to: {tag: 3}}
      - transfer: {to: lisi, message: 您好, resigned: false}
    """
    assert _problems(steps) == []


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ("  - transfer: {to: ''}\n", (6, 20, "steps[0].transfer.to", "must not be empty")),
        (
            "  - transfer: {to: lisi, message: " + "长" * 201 + "}\n",
            (6, 35, "steps[0].transfer.message", "String should have at most 200 characters"),
        ),
        (
            "  - transfer: {to: lisi, resign: true}\n",
            (
                6,
                26,
                "steps[0].transfer.resign",
                "unknown field 'resign' (did you mean 'resigned'?)",
            ),
        ),
        (
            "  - transfer: {message: hi}\n",
            (6, 15, "steps[0].transfer.to", "missing required field 'to'"),
        ),
        (
            "  - notify_staff: {text: hi, to: 'a|b'}\n",
            (6, 34, "steps[0].notify_staff.to", "must be one of: owner (got text 'a|b')"),
        ),
        (
            "  - notify_staff: {text: hi, to: {tag: x1}}\n",
            (
                6,
                40,
                "steps[0].notify_staff.to.tag",
                "'x1' is not a valid staff tag id: use the number of a WeCom 通讯录 tag, e.g. 3",
            ),
        ),
        (
            "  - notify_staff: {text: hi, to: [wang wu]}\n",
            (
                6,
                35,
                "steps[0].notify_staff.to[0]",
                "'wang wu' is not a valid staff userid: a WeCom userid has no spaces and no "
                "'|', e.g. zhangsan",
            ),
        ),
        (
            "  - notify_staff: {text: hi, to: []}\n",
            (6, 34, "steps[0].notify_staff.to", "needs at least 1 item"),
        ),
        (
            "  - notify_staff: {text: hi, to: [a, '']}\n",
            (6, 38, "steps[0].notify_staff.to[1]", "must not be empty"),
        ),
        (
            "  - notify_staff: {text: hi, to: 5}\n",
            (
                6,
                34,
                "steps[0].notify_staff.to",
                "to is owner, a list of staff userids, or {tag: <staff tag id>}",
            ),
        ),
    ],
    ids=[
        "empty-to",
        "long-message",
        "typo",
        "missing-to",
        "pipe",
        "tag",
        "space",
        "no-users",
        "empty-user",
        "number",
    ],
)
def test_mistakes_point_at_the_field(steps: str, expected: Problem) -> None:
    _, errors = load_text(HEAD + steps, filename="pb.yaml", channels=CHANNELS)

    assert [(e.line, e.column, e.path, e.message) for e in errors] == [expected]
