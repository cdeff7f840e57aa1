"""Every kind of mistake in a playbook is reported at once, at its file:line:column and field
path, in words an ops person understands."""

from pathlib import Path
from textwrap import dedent

import pytest
from typer.testing import CliRunner

from adapters import PLAYBOOK_CHANNELS
from smr.cli import app
from smr.playbooks import check_source, load_policies_text, load_text
from tests.unit.playbooks.playbook_support import CHANNELS, load_playbook

BASE = """\
id: greet
name: 问候
trigger:
  event: contact.added
steps:
  - send:
      channel: mock
      text: hi
"""
SCHEDULED = BASE.replace("  event: contact.added", '  schedule: "0 10 * * 5"')

Problem = tuple[int, int, str, str]


def _problems(text: str) -> list[Problem]:
    _, errors = load_text(text, filename="pb.yaml", channels=CHANNELS)
    return [(e.line, e.column, e.path, e.message) for e in errors]


# (case, playbook text, [(line, column, path, message)])
CASES: list[tuple[str, str, list[Problem]]] = [
    (
        "unknown field, close to an allowed one",
        BASE.replace("channel: mock", "chanel: mock"),
        [(7, 7, "steps[0].send.chanel", "unknown field 'chanel' (did you mean 'channel'?)")],
    ),
    (
        "unknown field, nothing close",
        BASE + "colour: red\n",
        [
            (
                9,
                1,
                "colour",
                "unknown field 'colour' (allowed here: id, name, enabled, mode, cooldown,"
                " delivery, trigger, steps, exit_on, goal, group_welcome)",
            )
        ],
    ),
    (
        "unknown top-level field instead of a required one",
        BASE.replace("name:", "nmae:"),
        [(2, 1, "nmae", "unknown field 'nmae' (did you mean 'name'?)")],
    ),
    (
        "unknown step key",
        BASE.replace("- send:", "- sned:"),
        [(6, 5, "steps[0]", "unknown step 'sned' (did you mean 'send'?)")],
    ),
    (
        "unknown field in an if step uses the YAML spelling",
        BASE + "  - if: contact.stats.orders > 0\n    then: [{stop: {}}]\n    esle: []\n",
        [(11, 5, "steps[1].esle", "unknown field 'esle' (did you mean 'else'?)")],
    ),
    (
        "two actions in one step",
        BASE + "  - tag: {add: [x]}\n    stop: {}\n",
        [(9, 5, "steps[1]", "a step does one thing, found tag and stop: give each its own '- '")],
    ),
    (
        "unknown trigger key",
        BASE.replace("  event:", "  evnt:"),
        [(4, 3, "trigger", "unknown field 'evnt' (did you mean 'event'?)")],
    ),
    (
        "text instead of a list",
        BASE.replace("  - send:\n      channel: mock\n      text: hi\n", "  hello\n"),
        [(6, 3, "steps", "expected a list, got text 'hello'")],
    ),
    (
        "a list instead of text",
        BASE.replace("name: 问候", "name: [问候]"),
        [(2, 7, "name", "expected text, got a list")],
    ),
    (
        "text instead of true or false",
        BASE + "enabled: maybe\n",
        [(9, 10, "enabled", "expected true or false, got text 'maybe'")],
    ),
    (
        "text instead of a trigger",
        BASE.replace("trigger:\n  event: contact.added", "trigger: contact.added"),
        [(3, 10, "trigger", "expected a trigger (event, schedule), got text 'contact.added'")],
    ),
    (
        "not one of the allowed words, close to one",
        BASE + "mode: restrat\n",
        [(9, 7, "mode", "must be one of: single, restart, parallel (did you mean 'restart'?)")],
    ),
    (
        "bad duration",
        BASE + "cooldown: 3 days\n",
        [(9, 11, "cooldown", "bad duration '3 days': use a number followed by s, m, h or d")],
    ),
    (
        "wait of the wrong kind",
        BASE + "  - wait: [3d]\n",
        [
            (
                9,
                11,
                "steps[1].wait",
                "wait takes a duration like 3d, a template, or {until: HH:MM} (got a list)",
            )
        ],
    ),
    (
        "bad cron",
        SCHEDULED.replace("0 10 * * 5", "0 25 * * 5"),
        [(4, 13, "trigger.schedule", "bad cron '0 25 * * 5': hour '25' is out of range 0-23")],
    ),
    (
        "bad clock time",
        BASE + '  - wait: {until: "24:00"}\n',
        [(9, 19, "steps[1].wait.until", "bad time '24:00': use HH:MM, e.g. 09:30")],
    ),
    (
        "unknown channel, close to a configured one",
        BASE.replace("channel: mock", "channel: wecon"),
        [(7, 16, "steps[0].send.channel", "unknown channel 'wecon' (did you mean 'wecom'?)")],
    ),
    (
        "unknown channel, nothing close",
        BASE.replace("channel: mock", "channel: wechat"),
        [
            (
                7,
                16,
                "steps[0].send.channel",
                "unknown channel 'wechat' (configured: mock, sms, wecom)",
            )
        ],
    ),
    (
        "expression that does not compile",
        BASE + "  - if: contact.stats.orders >\n    then: [{stop: {}}]\n",
        [(9, 9, "steps[1].if", "bad expression: unexpected 'end of template'")],
    ),
    (
        "single-line template that does not compile",
        BASE.replace("text: hi", 'text: "{{ contact.name | }}"'),
        [
            (
                8,
                13,
                "steps[0].send.text",
                "bad template: expected token 'name', got 'end of print statement'",
            )
        ],
    ),
    (
        "multi-line | template: the bad template line",
        BASE.replace("text: hi", "text: |\n        您好\n        {{ contact.nmae.__class__ }}"),
        [(10, 9, "steps[0].send.text", "bad template: access to '__class__' is not allowed")],
    ),
    (
        "multi-line > template: the bad template line",
        BASE.replace("text: hi", "text: >\n        您好\n        还是这一行\n\n        {{ x. }}"),
        [(12, 9, "steps[0].send.text", "bad template: expected name or number")],
    ),
    (
        "template nested beyond what can be compiled",
        BASE.replace("text: hi", 'text: "{{ ' + "(" * 5000 + "1" + ")" * 5000 + ' }}"'),
        [(8, 13, "steps[0].send.text", "bad template: nested too deeply")],
    ),
    (
        "every problem at once, in file order",
        BASE.replace("name: 问候", "name: [问候]").replace("channel: mock", "chanel: mock")
        + "cooldown: soon\n",
        [
            (2, 7, "name", "expected text, got a list"),
            (7, 7, "steps[0].send.chanel", "unknown field 'chanel' (did you mean 'channel'?)"),
            (9, 11, "cooldown", "bad duration 'soon': use a number followed by s, m, h or d"),
        ],
    ),
    (
        "a warning is listed with the errors",
        BASE.replace("contact.added", "contact.add").replace("text: hi", "txt: hi"),
        [
            (
                4,
                10,
                "trigger.event",
                "unknown event type 'contact.add' (did you mean 'contact.added'?)",
            ),
            (8, 7, "steps[0].send.txt", "unknown field 'txt' (did you mean 'text'?)"),
        ],
    ),
    (
        "YAML syntax",
        BASE.replace("text: hi", "text: hi: there"),
        [(8, 15, "", "YAML: mapping values are not allowed here")],
    ),
    (
        "not a mapping",
        "- id: greet\n",
        [(1, 1, "", "expected a mapping of fields (name: value), got a list")],
    ),
    ("empty file", "# nothing yet\n", [(1, 1, "", "file is empty")]),
]


@pytest.mark.parametrize(
    ("text", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_problems_point_at_the_field_in_plain_words(text: str, expected: list[Problem]) -> None:
    assert _problems(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "quiet_hours: {from: 21:30, too: 09:00}\n",
            [(1, 28, "quiet_hours.too", "unknown field 'too' (did you mean 'to'?)")],
        ),
        (
            "frequency_caps: [{max: many, per: 1d}]\n",
            [(1, 24, "frequency_caps[0].max", "expected a whole number, got text 'many'")],
        ),
        ("on_cap: skp\n", [(1, 9, "on_cap", "must be one of: skip, defer (did you mean 'skip'?)")]),
        (
            "vars:\n  use_cycle_days: {FACE-WASH: 25, TONER: 0}\n",
            [
                (
                    2,
                    3,
                    "vars",
                    "use_cycle_days.TONER: Input should be greater than 0 "
                    "(the days a unit of the SKU lasts)",
                )
            ],
        ),
    ],
)
def test_policies_problems(text: str, expected: list[Problem]) -> None:
    policies, errors = load_policies_text(text, filename="policies.yaml")
    assert policies is None
    assert [(e.line, e.column, e.path, e.message) for e in errors] == expected


def test_custom_event_types_load_with_a_warning() -> None:
    text = BASE.replace("contact.added", "loyalty.points_added") + (
        "exit_on:\n  - event: order.refunded\n  - event: order.refundd\n"
    )
    loaded, warnings = load_text(text, filename="pb.yaml", channels=CHANNELS)

    assert loaded is not None
    assert loaded.trigger_event == "loyalty.points_added"
    assert [(w.severity, w.format()) for w in warnings] == [
        (
            "warning",
            "pb.yaml:4:10: warning: trigger.event: custom event type 'loyalty.points_added':"
            " it starts runs only if your systems post it",
        ),
        (
            "warning",
            "pb.yaml:11:12: warning: exit_on[1].event: unknown event type 'order.refundd'"
            " (did you mean 'order.refunded'?)",
        ),
    ]


def test_canonical_event_types_give_no_warning() -> None:
    load_playbook(BASE)  # asserts there is no error and no warning


def test_positions_in_a_bundled_file_count_the_schema_comment() -> None:
    source = (Path(__file__).parents[3] / "playbooks" / "welcome.yaml").read_text()
    assert source.startswith("# yaml-language-server: $schema=./schema.json\n")
    bad = "{{ vars.shop_name.__class__ }}"
    text = source.replace("{{ vars.shop_name }}", bad, 1)
    line, row = next((n, row) for n, row in enumerate(text.splitlines(), 1) if bad in row)

    [error] = load_text(text, filename="welcome.yaml", channels=PLAYBOOK_CHANNELS)[1]

    assert (error.line, error.column, error.path, error.message) == (
        line,
        row.index('"') + 1,
        "steps[2].then[0].send.text",
        "bad template: access to '__class__' is not allowed",
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", [(1, 1, "", "file is empty")]),
        (
            b"id: x\nname: \xff\xfe\n",
            [(2, 7, "", "not UTF-8 text (byte 0xff at offset 12): save the file as UTF-8")],
        ),
        (
            b"id: x\n\x00\x01",
            [(2, 1, "", "character U+0000 is not allowed in YAML (is this a text file?)")],
        ),
        (
            b"a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + b"".join(
                f"{b}: &{b} [{', '.join([f'*{a}'] * 10)}]\n".encode()
                for a, b in zip("abcde", "bcdef", strict=True)
            ),
            [(1, 1, "", "too many values: over 100000 (each use of an alias *name counts)")],
        ),
        (b"[" * 5000, [(1, 1, "", "the YAML is nested too deeply")]),
        (
            b"id: x\n---\nid: y\n",
            [
                (
                    2,
                    1,
                    "",
                    "YAML: expected a single document in the stream, but found another document",
                )
            ],
        ),
    ],
    ids=["empty", "not-utf8", "control-bytes", "alias-bomb", "deep-nesting", "two-documents"],
)
def test_any_bytes_give_errors_not_exceptions(data: bytes, expected: list[Problem]) -> None:
    errors = check_source(data, filename="pb.yaml", kind="playbook", channels=CHANNELS, loaded={})
    assert [(e.line, e.column, e.path, e.message) for e in errors] == expected


def test_duplicate_id_of_another_file_but_not_of_the_same_file() -> None:
    first = load_playbook(BASE)  # loaded from pb.yaml
    text = ("# a second copy\n" + BASE).encode()

    other = check_source(
        text, filename="copy.yaml", kind="playbook", channels=CHANNELS, loaded={"greet": first}
    )
    same = check_source(
        text, filename="pb.yaml", kind="playbook", channels=CHANNELS, loaded={"greet": first}
    )

    assert [e.format() for e in other] == [
        "copy.yaml:2:5: id: duplicate playbook id 'greet' (already defined in pb.yaml)"
    ]
    assert same == []


def test_check_command_prints_warnings_and_passes(tmp_path: Path) -> None:
    (tmp_path / "points.yaml").write_text(
        dedent(BASE).replace("contact.added", "loyalty.points_added"), encoding="utf-8"
    )

    result = CliRunner().invoke(app, ["playbooks", "check", str(tmp_path)])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"{tmp_path / 'points.yaml'}:4:10: warning: trigger.event: custom event type"
        " 'loyalty.points_added': it starts runs only if your systems post it",
        "1 playbooks valid, 0 errors",
    ]
