"""The cron text a schedule trigger accepts, what croniter is handed, and the load errors."""

from __future__ import annotations

import re
from textwrap import dedent

import pytest

from smr.playbooks import load_text
from smr.playbooks.crontab import parse_crontab
from tests.unit.playbooks.playbook_support import CHANNELS

ACCEPTED = [
    # expression, croniter expressions (one, or the day-of-month and day-of-week halves)
    ("0 10 * * 5", ["0 10 * * 5"]),
    ("@daily", ["0 0 * * *"]),
    ("@Hourly", ["0 * * * *"]),
    ("@weekly", ["0 0 * * 0"]),
    ("@monthly", ["0 0 1 * *"]),
    ("@yearly", ["0 0 1 1 *"]),
    ("@annually", ["0 0 1 1 *"]),
    ("@midnight", ["0 0 * * *"]),
    (" 30 9 * * MON-FRI ", ["30 9 * * 1,2,3,4,5"]),
    ("0 9 * * mon,Wed,FRI", ["0 9 * * 1,3,5"]),
    ("0 9 * * FRI-SUN", ["0 9 * * 0,5,6"]),
    ("0 9 * * 5-7", ["0 9 * * 0,5,6"]),
    ("0 9 * * 0,7", ["0 9 * * 0"]),
    ("0 9 * * */3", ["0 9 * * 0,3,6"]),
    ("0 9 1 JAN-MAR *", ["0 9 1 1,2,3 *"]),
    ("0 9 1 jan-dec/6 *", ["0 9 1 1,7 *"]),
    ("0 10-10 * * *", ["0 10 * * *"]),  # croniter alone reads an equal range as every hour
    ("*/20 9 * * *", ["0,20,40 9 * * *"]),
    ("50/5 9 * * *", ["50,55 9 * * *"]),
    ("0 9 L * *", ["0 9 L * *"]),
    ("0 9 15,l * *", ["0 9 15,L * *"]),
    ("0 9 * * FRI#2", ["0 9 * * 5#2"]),
    ("0 9 * * 7#1,1#3", ["0 9 * * 0#1,1#3"]),
    ("0 9 * * Lfri", ["0 9 * * L5"]),
    ("0 9 ? * 3", ["0 9 * * 3"]),
    ("0 9 */2 * 5", ["0 9 1,3,5,7,9,11,13,15,17,19,21,23,25,27,29,31 * 5"]),  # '*…': AND
    ("0 9 13 * 5", ["0 9 13 * *", "0 9 * * 5"]),  # both restricted: OR
    ("0 9 L * FRI#2", ["0 9 L * *", "0 9 * * 5#2"]),
    ("0 0 29 2 *", ["0 0 29 2 *"]),
    ("0 0 31 2 MON", ["0 0 31 2 *", "0 0 * 2 1"]),  # no 31 February, but its Mondays
]


@pytest.mark.parametrize(("expression", "expected"), ACCEPTED)
def test_accepted_and_what_croniter_reads(expression: str, expected: list[str]) -> None:
    assert list(parse_crontab(expression).expressions()) == expected


REJECTED = [
    ("0 10 * *", "expected 5 fields, got 4"),
    ("0 10 * * 5 2026", "expected 5 fields, got 6"),
    ("", "expected 5 fields, got 0"),
    ("@daly", "unknown alias, use one of @yearly, @annually, @monthly, @weekly, @daily"),
    ("60 10 * * 5", "minute '60' is out of range 0-59"),
    ("0 24 * * 5", "hour '24' is out of range 0-23"),
    ("0 10 0 * 5", "day-of-month '0' is out of range 1-31"),
    ("0 10 * 13 5", "month '13' is out of range 1-12"),
    ("0 10 * * 8", "day-of-week '8' is out of range 0-7"),
    ("*/0 10 * * 5", "minute '*/0' has a bad step"),
    ("0 10-5 * * 5", "hour '10-5' is an empty range"),
    ("0 10 * DEC-JAN *", "month 'DEC-JAN' is an empty range"),
    ("0 10 * * SAT-MON", "day-of-week 'SAT-MON' is an empty range"),
    ("0 10 * * FRY", "day-of-week 'FRY' is not a number 0-7 (0 and 7 are Sunday), SUN-SAT"),
    ("H 10 * * *", "minute 'H' is not a number 0-59"),
    ("R 10 * * *", "minute 'R' is not a number 0-59"),
    ("0 ? * * *", "hour '?' is not a number 0-23"),
    ("0 10 JAN * *", "day-of-month 'JAN' is not a number 1-31, 'L' (the last day)"),
    ("0 10 L-2 * *", "day-of-month 'L-2' is not a number 1-31"),
    ("0 10 15W * *", "day-of-month '15W' is not a number 1-31"),
    ("0 10 * * 5L", "day-of-week '5L': write 'L5' for the last one of a month"),
    ("0 10 * * 5#6", "day-of-week '5#6': the week after '#' is 1-5"),
    ("0 10 * * 5#0", "day-of-week '5#0': the week after '#' is 1-5"),
    ("0 10 * * L8", "day-of-week 'L8' needs a weekday 0-7 or SUN-SAT before '#' or after 'L'"),
    ("0 10 * * 1,L5", "day-of-week '1,L5' mixes '#' or 'L' days with plain days"),
    ("0 10 * * MON#1/2", "day-of-week 'MON#1/2' is not a number 0-7"),
    ("0 0 30 2 *", "never fires (no month has that day)"),
    ("0 0 31 4,6,9,11 *", "never fires (no month has that day)"),
]


@pytest.mark.parametrize(("expression", "problem"), REJECTED)
def test_rejected_with_a_message_that_says_why(expression: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"bad cron '{expression}': {problem}")):
        parse_crontab(expression)


PLAYBOOK = """\
    id: weekly
    name: 周五
    trigger:
      schedule: "{schedule}"
      audience: {{tags_any: [会员]}}
    steps:
      - send: {{channel: mock, text: hi}}
    """


@pytest.mark.parametrize("schedule", ["@daily", "0 9 * * MON-FRI", "0 9 L * *", "0 9 * * 5#2"])
def test_a_playbook_loads_with_the_syntax_ops_people_write(schedule: str) -> None:
    loaded, errors = load_text(
        dedent(PLAYBOOK.format(schedule=schedule)), filename="pb.yaml", channels=CHANNELS
    )
    assert errors == []
    assert loaded is not None


def test_a_bad_expression_is_reported_at_file_line_column() -> None:
    loaded, errors = load_text(
        dedent(PLAYBOOK.format(schedule="0 10 * * 5L")), filename="pb.yaml", channels=CHANNELS
    )
    assert loaded is None
    assert [(e.file, e.line, e.column, e.path, e.message) for e in errors] == [
        (
            "pb.yaml",
            4,
            13,
            "trigger.schedule",
            "bad cron '0 10 * * 5L': day-of-week '5L': write 'L5' for the last one of a month",
        )
    ]
