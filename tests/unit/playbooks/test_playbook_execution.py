from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from smr.playbooks import (
    Completed,
    ContactView,
    Execution,
    Failed,
    LoadedPlaybook,
    SendEffect,
    SetEffect,
    Stopped,
    TagEffect,
    Waiting,
    execute,
)
from smr.playbooks.program import Jump, Program
from tests.unit.playbooks.playbook_support import NOW, RUN, load_playbook, make_contact, make_event

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _run(
    playbook: LoadedPlaybook,
    *,
    pc: int = 0,
    contact: ContactView | None = None,
    now: datetime = NOW,
    **data: Any,
) -> Execution:
    event = make_event(**data)
    return execute(
        playbook,
        pc=pc,
        contact=contact or make_contact(),
        event=event,
        trigger=event,
        run=RUN,
        now=now,
        vars={"shop": "某某旗舰店"},
        tz=SHANGHAI,
    )


def _steps(steps: str) -> LoadedPlaybook:
    return load_playbook(f"id: pb\nname: n\ntrigger: {{event: order.paid}}\nsteps:\n{steps}")


def test_tags_and_attributes_are_visible_to_later_steps_without_mutating_input() -> None:
    playbook = _steps(
        "  - tag: {add: [洗面奶用户, vip], remove: [new]}\n"
        "  - set: {points: '{{ contact.attributes.points + 1 }}', tier: 钻粉, ratio: '0.5'}\n"
        "  - if: \"'vip' in contact.tags and contact.attributes.points == 3\"\n"
        "    then: [{send: {channel: mock, text: '{{ contact.tags | join(\",\") }}'}}]\n"
    )
    contact = make_contact(tags=["new", "vip"], points=2)
    execution = _run(playbook, contact=contact)
    assert execution.outcome == Completed()
    assert execution.effects[:2] == [
        TagEffect("steps[0]", ("洗面奶用户", "vip"), ("new",)),
        SetEffect({"points": 3, "tier": "钻粉", "ratio": 0.5}),
    ]
    send = execution.effects[2]
    assert isinstance(send, SendEffect)
    assert send.text == "vip,洗面奶用户"
    assert (contact.tags, contact.attributes) == (["new", "vip"], {"points": 2})


def test_tag_names_are_templates_and_an_empty_name_is_dropped() -> None:
    playbook = _steps(
        "  - tag:\n"
        "      add: ['渠道:{{ event.data.state }}', '{{ event.data.missing | default(\"\") }}']\n"
        "  - tag: {remove: ['渠道:{{ event.data.state }}'], add: [done]}\n"
    )
    execution = _run(playbook, state="douyin-live")
    assert execution.effects == [
        TagEffect("steps[0]", ("渠道:douyin-live",), ()),
        TagEffect("steps[1]", ("done",), ("渠道:douyin-live",)),
    ]
    assert [t.detail for t in execution.trace] == [
        {"add": ["渠道:douyin-live"], "remove": []},
        {"add": ["done"], "remove": ["渠道:douyin-live"]},
    ]


def test_a_tag_template_that_fails_fails_the_run() -> None:
    execution = _run(_steps("  - tag: {add: ['{{ event.data.nope.deeper }}']}\n"))
    assert isinstance(execution.outcome, Failed)
    assert execution.outcome.reason.startswith("tag: ")


IF_ELSE = """\
  - if: "contact.stats.orders > 1"
    then:
      - send: {channel: mock, text: 老客}
    else:
      - send: {channel: sms, category: service, text: 新客}
  - notify_staff: {text: "{{ contact.name }} @ {{ vars.shop }}"}
"""


@pytest.mark.parametrize(
    ("orders", "channel", "text", "branch"), [(2, "mock", "老客", True), (0, "sms", "新客", False)]
)
def test_if_else(orders: int, channel: str, text: str, branch: bool) -> None:
    execution = _run(_steps(IF_ELSE), contact=make_contact(orders=orders))
    send, notify = execution.effects
    assert isinstance(send, SendEffect)
    assert (send.channel, send.text) == (channel, text)
    assert notify == SendEffect(
        "steps[1]", "staff", "service", "小王 @ 某某旗舰店", None, {"to": "owner"}
    )
    assert execution.trace[0].detail == {
        "expression": "contact.stats.orders > 1",
        "result": branch,
    }
    assert [t.kind for t in execution.trace] == ["branch", "send", "notify"]


def test_stop_ends_the_run() -> None:
    execution = _run(_steps("  - stop:\n  - tag: {add: [never]}\n"))
    assert execution.outcome == Stopped("steps[0]")
    assert execution.effects == []
    assert [t.kind for t in execution.trace] == ["stop"]


@pytest.mark.parametrize(
    ("wait", "now", "wake_at"),
    [
        ("3d", NOW, NOW + timedelta(days=3)),
        ("\"{{ 25 * event.quantity_of('FACE-WASH') }}d\"", NOW, NOW + timedelta(days=50)),
        # 10:00 Shanghai is exactly now → the next day's 10:00
        ("{until: '10:00'}", NOW, datetime(2024, 5, 2, 2, 0, tzinfo=UTC)),
        # 09:59 Shanghai → one minute later, same day
        ("{until: 10:00}", datetime(2024, 5, 1, 1, 59, tzinfo=UTC), NOW),
        # 23:30 Shanghai → 08:00 after midnight, returned in UTC
        (
            "{until: '08:00'}",
            datetime(2024, 5, 1, 15, 30, tzinfo=UTC),
            datetime(2024, 5, 2, 0, 0, tzinfo=UTC),
        ),
    ],
)
def test_wait(wait: str, now: datetime, wake_at: datetime) -> None:
    playbook = _steps(f"  - wait: {wait}\n  - tag: {{add: [after]}}\n")
    execution = _run(playbook, now=now, items=[{"sku": "FACE-WASH", "quantity": 2}])
    assert execution.outcome == Waiting(pc=1, wake_at=wake_at)
    assert execution.outcome.wake_at.tzinfo == UTC
    assert execution.trace[-1].detail == {
        "wake_at": wake_at.isoformat(),
        "measured_from": now.astimezone(UTC).isoformat(),
    }
    resumed = _run(playbook, pc=1, now=wake_at)
    assert resumed.effects == [TagEffect("steps[1]", ("after",), ())]
    assert resumed.outcome == Completed()


def test_send_template_error_is_recorded_and_the_run_continues() -> None:
    playbook = _steps(
        "  - send: {channel: sms, template: SMS_1, params: {n: '{{ contact.attributes.nick }}'}}\n"
        "  - send: {channel: mock, text: ok}\n"
    )
    execution = _run(playbook)
    broken, ok = execution.effects
    assert broken == SendEffect(
        "steps[0]",
        "sms",
        "marketing",
        text=None,
        template_code="SMS_1",
        error="template_error: 'dict object' has no attribute 'nick'",
    )
    assert isinstance(ok, SendEffect)
    assert ok.text == "ok"
    assert execution.outcome == Completed()


@pytest.mark.parametrize(
    ("steps", "reason"),
    [
        ("  - set: {x: '{{ 1 / 0 }}'}\n", "set: ZeroDivisionError: division by zero"),
        (
            "  - if: contact.attributes.nope\n    then: [{stop: {}}]\n",
            "if: 'dict object' has no attribute 'nope'",
        ),
        ("  - wait: \"{{ 'abc' }}\"\n", "wait rendered 'abc', not a duration"),
        (
            "  - wait: '{{ 25 * 400000 }}d'\n",
            "wait: duration '10000000d' is over the bound of 3650d (ten years)",
        ),
        (
            "  - wait: '{{ contact.attributes.days }}d'\n",
            "wait: 'dict object' has no attribute 'days'",
        ),
        (
            "  - notify_staff: {text: '{{ run.nope }}'}\n",
            "notify_staff: 'smr.playbooks.context.RunView object' has no attribute 'nope'",
        ),
    ],
)
def test_failures_end_the_run_with_an_error_trace(steps: str, reason: str) -> None:
    execution = _run(_steps(steps + "  - tag: {add: [never]}\n"))
    assert isinstance(execution.outcome, Failed)
    assert execution.outcome.reason.startswith(reason)
    assert execution.trace[-1].kind == "error"
    assert execution.effects == []


def test_instruction_limit_guards_against_loops() -> None:
    playbook = _steps("  - stop: {}\n")
    looping = Program((Jump("steps[0]", target=0),))
    execution = _run(replace(playbook, program=looping))
    assert execution.outcome == Failed("more than 1000 instructions")


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        _run(_steps("  - stop: {}\n"), now=datetime(2024, 5, 1))


def test_now_in_templates_is_local_time() -> None:
    execution = _run(_steps("  - notify_staff: {text: \"{{ now.strftime('%H:%M') }}\"}\n"))
    assert execution.effects == [
        SendEffect("steps[0]", "staff", "service", "10:00", None, {"to": "owner"})
    ]


def _ran(steps: str, **data: Any) -> Any:
    playbook = load_playbook(f"id: pb\nname: n\ntrigger: {{event: order.paid}}\nsteps:\n{steps}")
    return execute(
        playbook,
        pc=0,
        contact=make_contact(tags=["旧"]),
        event=make_event(**data),
        trigger=make_event(**data),
        run=RUN,
        now=NOW,
        vars={},
        tz=ZoneInfo("Asia/Shanghai"),
    )


def test_a_tag_per_item_and_an_attribute_named_by_a_template() -> None:
    steps = (
        "  - tag: {add_each: \"event.skus | map('lower') | list\", remove_each: \"['旧']\"}\n"
        '  - set: {"last_{{ event.skus | first }}":'
        ' "{{ event.quantity_of(event.skus | first) }}"}\n'
    )

    execution = _ran(steps, items=[{"sku": "WASH", "quantity": 2}, {"sku": "TONER"}])

    tag, values = execution.effects
    assert (tag.add, tag.remove) == (("wash", "toner"), ("旧",))
    assert values.values == {"last_WASH": 2}


def test_an_attribute_name_that_renders_empty_fails_the_run() -> None:
    execution = _ran("  - set: {\"{{ event.data.none | default('') }}\": 1}\n")

    assert isinstance(execution.outcome, Failed)
    assert "rendered" not in execution.outcome.reason
    assert "use 1-100 characters" in execution.outcome.reason


def test_emit_names_the_contact_as_an_event_does_and_stops_after_five_hops() -> None:
    steps = (
        "  - emit: {type: a.b, to: {phone: '+86 138-0000-0000'}, data: {n: '{{ 1 + 1 }}'}}\n"
        "  - emit: {type: a.b, to: {phone: '12'}}\n"
    )

    first = _ran(steps)
    (effect,) = first.effects
    assert (effect.type, effect.contact) == ("a.b", {"phone": "13800000000"})
    assert effect.data["n"] == "2"
    assert effect.data["emitted_by"]["hops"] == 1
    assert [t.detail["posted"] for t in first.trace if t.kind == "emit"] == [True, False]

    looping = _ran(steps, emitted_by={"hops": 5})
    assert looping.effects == []
    assert looping.trace[0].detail["reason"] == "5 hops"
