from datetime import time, timedelta
from pathlib import Path
from textwrap import dedent

import pytest

from smr.playbooks import (
    PlaybookError,
    Policies,
    load_directory,
    load_policies_text,
    load_text,
)
from smr.playbooks.program import Jump, JumpUnless
from smr.playbooks.steps.notify import NotifyStaff
from smr.playbooks.steps.send import Send
from smr.playbooks.steps.set_attrs import SetAttrs
from smr.playbooks.steps.stop import Stop
from smr.playbooks.steps.tag import Tag
from smr.playbooks.steps.wait import Wait
from tests.unit.playbooks.playbook_support import CHANNELS

VALID = """\
id: repurchase-face-wash
name: 洗面奶回购提醒
mode: restart
cooldown: 1h
trigger:
  event: order.paid
  if: "'FACE-WASH' in event.skus"
steps:
  - tag: {add: [洗面奶用户]}
  - set: {tier: 钻粉, points: 5}
  - wait: "{{ 25 * event.quantity_of('FACE-WASH') }}d"
  - if: "contact.stats.orders > 1"
    then:
      - send: {channel: sms, template: SMS_1, params: {name: "{{ contact.name }}"}}
    else:
      - stop: {}
  - wait: {until: 10:00}
  - notify_staff: {text: "{{ contact.name }} 回购提醒已发"}
exit_on:
  - event: order.refunded
    if: "event.data.order_id == trigger.data.order_id"
"""


def _errors(text: str) -> list[PlaybookError]:
    loaded, errors = load_text(dedent(text), filename="pb.yaml", channels=CHANNELS)
    assert loaded is None
    return errors


def test_valid_playbook_loads_and_compiles() -> None:
    loaded, errors = load_text(VALID, filename="pb.yaml", channels=CHANNELS)
    assert errors == []
    assert loaded is not None
    assert loaded.spec.mode == "restart"
    assert loaded.spec.cooldown == timedelta(hours=1)
    assert loaded.listens_to == frozenset({"order.paid", "order.refunded"})
    assert len(loaded.version) == 12
    assert loaded.condition is not None
    assert loaded.condition.source == "'FACE-WASH' in event.skus"
    kinds = [type(i) for i in loaded.program.instructions]
    assert kinds == [Tag, SetAttrs, Wait, JumpUnless, Send, Jump, Stop, Wait, NotifyStaff]
    until = loaded.program.instructions[7]
    assert isinstance(until, Wait)
    assert until.until == time(10, 0)


def test_version_follows_content() -> None:
    first, _ = load_text(VALID, filename="a.yaml", channels=CHANNELS)
    second, _ = load_text(VALID.replace("1h", "2h"), filename="a.yaml", channels=CHANNELS)
    assert first is not None
    assert second is not None
    assert first.version != second.version


# (description, yaml, [(line, column, path, message)])
ERROR_CASES = [
    (
        "unknown top-level field",
        VALID + "colour: red\n",
        [
            (
                22,
                1,
                "colour",
                "unknown field 'colour' (allowed here: id, name, enabled, mode, cooldown,"
                " delivery, trigger, steps, exit_on, goal, group_welcome)",
            )
        ],
    ),
    (
        "unknown field inside send",
        VALID.replace("template: SMS_1", "templat: SMS_1"),
        [
            (
                14,
                30,
                "steps[3].then[0].send.templat",
                "unknown field 'templat' (did you mean 'template'?)",
            )
        ],
    ),
    (
        "send without text or template",
        VALID.replace("template: SMS_1, ", ""),
        [
            (
                14,
                15,
                "steps[3].then[0].send",
                "send needs 'text', 'attachments' or a vendor 'template'",
            )
        ],
    ),
    (
        "trigger without event or schedule",
        VALID.replace("  event: order.paid\n", ""),
        [(6, 3, "trigger", "trigger needs either 'event' or 'schedule' (found: if)")],
    ),
    (
        "wrong type",
        VALID.replace("mode: restart", "mode: [restart]"),
        [(3, 7, "mode", "must be one of: single, restart, parallel (got a list)")],
    ),
    (
        "bad duration",
        VALID.replace("cooldown: 1h", "cooldown: 3x"),
        [(4, 11, "cooldown", "bad duration '3x': use a number followed by s, m, h or d")],
    ),
    (
        "bad literal wait",
        VALID.replace("wait: {until: 10:00}", "wait: 3 days"),
        [
            (
                17,
                11,
                "steps[4].wait",
                "bad duration '3 days': use a number followed by s, m, h or d",
            )
        ],
    ),
    (
        "bad until",
        VALID.replace("until: 10:00", "until: 25:00"),
        [(17, 19, "steps[4].wait.until", "bad time '25:00': use HH:MM, e.g. 09:30")],
    ),
    (
        "unknown channel",
        VALID.replace("channel: sms", "channel: wechat"),
        [
            (
                14,
                25,
                "steps[3].then[0].send.channel",
                "unknown channel 'wechat' (configured: mock, sms, wecom)",
            )
        ],
    ),
    (
        "unknown name in condition",
        VALID.replace("contact.stats.orders > 1", "contcat.stats.orders > 1"),
        [
            (
                12,
                9,
                "steps[3].if",
                "bad expression: unknown name 'contcat'"
                " (available: contact, event, trigger, run, now, vars)",
            )
        ],
    ),
    (
        "sandbox escape in template",
        VALID.replace("{{ contact.name }} 回购", "{{ ''.__class__.__mro__ }} 回购"),
        [
            (
                18,
                26,
                "steps[5].notify_staff.text",
                "bad template: access to '__mro__' is not allowed",
            )
        ],
    ),
    (
        "template syntax error",
        VALID.replace("{{ 25 * event", "{{ 25 * * event"),
        [(11, 11, "steps[2].wait", "bad template: unexpected '*'")],
    ),
    (
        "unknown step kind",
        VALID.replace("- stop: {}", "- halt: {}"),
        [
            (
                16,
                9,
                "steps[3].else[0]",
                "unknown step 'halt' (a step is one of: tag, set, wait, send,"
                " notify_staff, transfer, emit, stop, if)",
            )
        ],
    ),
    (
        "missing field",
        VALID.replace("name: 洗面奶回购提醒\n", ""),
        [(1, 1, "name", "missing required field 'name'")],
    ),
    (
        "bad id and event type",
        VALID.replace("repurchase-face-wash", "Repurchase").replace("order.paid", "Order Paid"),
        [
            (
                1,
                5,
                "id",
                "'Repurchase' is not a valid playbook id: use 1-64 lowercase letters, digits"
                " or '-', starting with a letter or digit, e.g. repurchase-face-wash",
            ),
            (
                6,
                10,
                "trigger.event",
                "'Order Paid' is not a valid event type: use lowercase words joined by dots,"
                " e.g. order.paid",
            ),
        ],
    ),
    (
        "empty tag step",
        VALID.replace("tag: {add: [洗面奶用户]}", "tag: {add: []}"),
        [
            (
                9,
                10,
                "steps[0].tag",
                "tag needs a non-empty 'add' or 'remove' (or 'add_each', 'remove_each')",
            )
        ],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES]
)
def test_load_errors_point_at_the_field(
    text: str, expected: list[tuple[int, int, str, str]]
) -> None:
    errors = _errors(text)
    assert [(e.line, e.column, e.path, e.message) for e in errors] == expected


def test_bad_cron_in_schedule_trigger() -> None:
    text = """\
        id: weekly
        name: 周五
        trigger:
          schedule: "0 10 * * 9"
          audience: {tags_any: [会员]}
        steps:
          - send: {channel: mock, text: hi}
        """
    [error] = _errors(text)
    assert (error.line, error.column, error.path) == (4, 13, "trigger.schedule")
    assert "day-of-week '9' is out of range 0-7" in error.message


def test_error_inside_block_scalar_points_at_template_line() -> None:
    text = """\
        id: greet
        name: 问候
        trigger: {event: contact.added}
        steps:
          - send:
              channel: mock
              text: |
                您好
                {{ contact.nmae | upper }}{{ vars.x.__class__ }}
        """
    [error] = _errors(text)
    assert (error.line, error.path) == (9, "steps[0].send.text")
    assert error.format().startswith("pb.yaml:9:")


def test_yaml_1_1_surprises_stay_strings() -> None:
    text = VALID.replace("repurchase-face-wash", "off").replace(
        "event: order.paid", "event: chat.message\n  keywords: [no, 价格]"
    )
    loaded, errors = load_text(text, filename="pb.yaml", channels=CHANNELS)
    assert errors == []
    assert loaded is not None
    assert (loaded.id, loaded.keywords) == ("off", ("no", "价格"))


def test_yaml_syntax_error_has_one_error_with_mark() -> None:
    [error] = _errors("id: x\nsteps: [\n  - a\n")
    assert error.message.startswith("YAML:")
    assert error.line == 3


def test_format_includes_file_line_column_path() -> None:
    error = PlaybookError("pb.yaml", 3, 7, "mode", "bad")
    assert error.format() == "pb.yaml:3:7: mode: bad"


def test_policies_parse_and_default() -> None:
    text = """\
        timezone: Asia/Shanghai
        quiet_hours: {from: 21:30, to: "09:00"}
        frequency_caps: [{max: 1, per: 1d}, {max: 3, per: 7d}]
        on_cap: defer
        vars: {shop_url: "https://example.com"}
        """
    policies, errors = load_policies_text(dedent(text), filename="policies.yaml")
    assert errors == []
    assert policies is not None
    assert policies.quiet_hours is not None
    assert (policies.quiet_hours.start, policies.quiet_hours.end) == (time(21, 30), time(9))
    assert [cap.per for cap in policies.frequency_caps] == [timedelta(days=1), timedelta(days=7)]
    assert policies.vars["shop_url"] == "https://example.com"
    assert load_policies_text("", filename="p.yaml") == (Policies(), [])


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        (
            "timezone: Mars/Olympus\n",
            "timezone",
            "unknown timezone 'Mars/Olympus' (use an IANA name)",
        ),
        ("frequency_caps: [{max: 0, per: 1d}]\n", "frequency_caps[0].max", "must be at least 1"),
        ("on_cap: drop\n", "on_cap", "must be one of: skip, defer (got text 'drop')"),
    ],
)
def test_policies_errors(text: str, path: str, message: str) -> None:
    policies, [error] = load_policies_text(text, filename="policies.yaml")
    assert policies is None
    assert (error.path, error.message) == (path, message)


def test_load_directory_skips_bad_files_and_reports_duplicates(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(VALID, encoding="utf-8")
    (tmp_path / "b.yml").write_text(VALID.replace("name: 洗面奶", "name: 另一个"), encoding="utf-8")
    (tmp_path / "c.yaml").write_text(
        VALID.replace("repurchase-face-wash", "other").replace("mode: restart", "mode: x"),
        encoding="utf-8",
    )
    (tmp_path / "d.yaml").write_text(
        VALID.replace("repurchase-face-wash", "fine"), encoding="utf-8"
    )
    (tmp_path / "notes.txt").write_text("ignored", encoding="utf-8")
    (tmp_path / "policies.yaml").write_text("timezone: Nowhere/Land\n", encoding="utf-8")

    result = load_directory(tmp_path, channels=CHANNELS)

    assert sorted(result.playbooks) == ["fine", "repurchase-face-wash"]
    assert result.playbooks["repurchase-face-wash"].file.endswith("a.yaml")
    assert result.policies == Policies()
    formatted = [e.format().removeprefix(f"{tmp_path}/") for e in result.errors]
    assert formatted == [
        "policies.yaml:1:11: timezone: unknown timezone 'Nowhere/Land' (use an IANA name)",
        f"b.yml:1:5: id: duplicate playbook id 'repurchase-face-wash'"
        f" (already defined in {tmp_path}/a.yaml)",
        "c.yaml:3:7: mode: must be one of: single, restart, parallel (got text 'x')",
    ]


def test_load_directory_missing(tmp_path: Path) -> None:
    result = load_directory(tmp_path / "nope", channels=CHANNELS)
    assert result.playbooks == {}
    assert "does not exist" in result.errors[0].message


def test_a_key_written_twice_is_an_error_at_the_second() -> None:
    text = "id: twice\nname: a\nname: b\ntrigger: {event: order.paid}\nsteps: [{stop: {}}]\n"
    loaded, errors = load_text(text, filename="twice.yaml", channels=["mock"])
    assert loaded is None
    assert [e.format() for e in errors] == [
        "twice.yaml:3:1: YAML: key 'name' appears twice (first on line 2)"
    ]


def test_vars_a_playbook_uses_but_policies_do_not_define_are_warnings(tmp_path: Path) -> None:
    (tmp_path / "policies.yaml").write_text(
        "vars: {shop_name: 某某旗舰店, shop_url: 'https://example.com'}\n", encoding="utf-8"
    )
    (tmp_path / "hello.yaml").write_text(
        dedent(
            """\
            id: hello
            name: hello
            trigger: {event: chat.message}
            steps:
              # vars.in_a_comment is not a use
              - send:
                  channel: mock
                  text: "{{ vars.shop_nmae }}，{{ vars['shop_url'] }} {{ vars.coupon }}"
            """
        ),
        encoding="utf-8",
    )

    result = load_directory(tmp_path, channels=CHANNELS)

    assert list(result.playbooks) == ["hello"]  # warnings do not stop a playbook
    assert [(e.severity, e.format().removeprefix(f"{tmp_path}/")) for e in result.errors] == [
        (
            "warning",
            "hello.yaml:8:22: warning: vars.shop_nmae is not defined in policies.yaml"
            " (did you mean 'shop_name'?); messages using it will be skipped with template_error",
        ),
        (
            "warning",
            "hello.yaml:8:66: warning: vars.coupon is not defined in policies.yaml;"
            " messages using it will be skipped with template_error",
        ),
    ]


def test_vars_are_not_checked_against_policies_that_do_not_load(tmp_path: Path) -> None:
    (tmp_path / "policies.yaml").write_text("vars: [not, a, mapping]\n", encoding="utf-8")
    (tmp_path / "hello.yaml").write_text(
        "id: hello\nname: hello\ntrigger: {event: chat.message}\n"
        "steps: [{send: {channel: mock, text: '{{ vars.shop_name }}'}}]\n",
        encoding="utf-8",
    )

    result = load_directory(tmp_path, channels=CHANNELS)

    assert [(e.file.rsplit("/", 1)[-1], e.severity) for e in result.errors] == [
        ("policies.yaml", "error")
    ]


def test_a_goal_compiles_with_its_window_and_where_it_counts_from() -> None:
    text = (
        VALID + 'goal: {event: order.paid, within: 3d, if: "event.data.total > 0", from: start}\n'
    )
    loaded, errors = load_text(text, filename="pb.yaml", channels=CHANNELS)

    assert errors == []
    assert loaded is not None
    assert loaded.goal is not None
    assert (loaded.goal.event, loaded.goal.within, loaded.goal.from_send) == (
        "order.paid",
        timedelta(days=3),
        False,
    )
    assert loaded.goal.condition is not None
    bad = _errors(VALID + "goal: {event: order.paid, within: 3 days, from: later}\n")
    assert [e.path for e in bad] == ["goal.within", "goal.from"]
