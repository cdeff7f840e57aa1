"""Fire times across both daylight-saving changes of 2026, the crontab syntax ops people write,
and the day-of-month/day-of-week OR rule. Expected times are written as local wall times with
their UTC offset, so a wrong offset or a skipped or doubled slot shows in the diff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from smr.playbooks.schedule import Schedule, due_slots

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")  # 2026: 03-29 02:00 → 03:00, 10-25 03:00 → 02:00
NEW_YORK = ZoneInfo("America/New_York")  # 2026: 03-08 02:00 → 03:00, 11-01 02:00 → 01:00


def fire_times(expression: str, tz: ZoneInfo, after: str, count: int) -> list[str]:
    """The next ``count`` fire times after the local time ``after``, as local ISO texts."""
    schedule = Schedule.parse(expression, tz=tz)
    moment = datetime.fromisoformat(after).replace(tzinfo=tz).astimezone(UTC)
    found = []
    for _ in range(count):
        nxt = schedule.next_after(moment)
        assert nxt is not None
        assert nxt.tzinfo is UTC
        found.append(nxt.astimezone(tz).isoformat(timespec="minutes"))
        moment = nxt
    return found


DST_TABLE = [
    # --- Asia/Shanghai has no daylight saving: the same nights change nothing.
    (
        "0 0 1 * *",
        SHANGHAI,
        "2026-03-01T00:00",
        ["2026-04-01T00:00+08:00", "2026-05-01T00:00+08:00"],
    ),
    (
        "30 2 * * *",
        SHANGHAI,
        "2026-03-28T12:00",
        ["2026-03-29T02:30+08:00", "2026-03-30T02:30+08:00"],
    ),
    (
        "0 * * * *",
        SHANGHAI,
        "2026-10-25T01:30",
        ["2026-10-25T02:00+08:00", "2026-10-25T03:00+08:00"],
    ),
    # --- Europe/Berlin, spring forward (03-29).
    (  # the reported defect: APScheduler 3 answered 2026-05-01
        "0 0 1 * *",
        BERLIN,
        "2026-03-01T00:00",
        ["2026-04-01T00:00+02:00", "2026-05-01T00:00+02:00"],
    ),
    (
        "0 10 * * *",
        BERLIN,
        "2026-03-27T12:00",
        ["2026-03-28T10:00+01:00", "2026-03-29T10:00+02:00", "2026-03-30T10:00+02:00"],
    ),
    (  # 02:30 does not exist that night: once, at the end of the gap
        "30 2 * * *",
        BERLIN,
        "2026-03-28T12:00",
        ["2026-03-29T03:00+02:00", "2026-03-30T02:30+02:00"],
    ),
    (  # hourly: the missing hour has no slot, no hour fires twice
        "0 * * * *",
        BERLIN,
        "2026-03-29T00:30",
        ["2026-03-29T01:00+01:00", "2026-03-29T03:00+02:00", "2026-03-29T04:00+02:00"],
    ),
    # --- Europe/Berlin, fall back (10-25): 02:00-02:59 happens twice.
    (  # a fixed time fires at its first occurrence only
        "30 2 * * *",
        BERLIN,
        "2026-10-24T12:00",
        ["2026-10-25T02:30+02:00", "2026-10-26T02:30+01:00"],
    ),
    (
        "0 0 1 * *",
        BERLIN,
        "2026-10-01T00:00",
        ["2026-11-01T00:00+01:00", "2026-12-01T00:00+01:00"],
    ),
    (  # hourly follows the clock: each of the two 02:00 is a real hour
        "@hourly",
        BERLIN,
        "2026-10-25T00:30",
        [
            "2026-10-25T01:00+02:00",
            "2026-10-25T02:00+02:00",
            "2026-10-25T02:00+01:00",
            "2026-10-25T03:00+01:00",
        ],
    ),
    # --- America/New_York, spring forward (03-08).
    (
        "0 0 1 * *",
        NEW_YORK,
        "2026-03-01T00:00",
        ["2026-04-01T00:00-04:00", "2026-05-01T00:00-04:00"],
    ),
    (
        "30 2 * * *",
        NEW_YORK,
        "2026-03-07T12:00",
        ["2026-03-08T03:00-04:00", "2026-03-09T02:30-04:00"],
    ),
    (
        "0 9 * * MON-FRI",
        NEW_YORK,
        "2026-03-06T12:00",
        ["2026-03-09T09:00-04:00", "2026-03-10T09:00-04:00"],
    ),
    # --- America/New_York, fall back (11-01): 01:00-01:59 happens twice.
    (
        "30 1 * * *",
        NEW_YORK,
        "2026-10-31T12:00",
        ["2026-11-01T01:30-04:00", "2026-11-02T01:30-05:00"],
    ),
    (
        "0 0 1 * *",
        NEW_YORK,
        "2026-10-01T00:00",
        ["2026-11-01T00:00-04:00", "2026-12-01T00:00-05:00"],
    ),
    (  # a wildcard minute follows the clock through both runs of the hour
        "*/30 1 * * *",
        NEW_YORK,
        "2026-11-01T00:45",
        [
            "2026-11-01T01:00-04:00",
            "2026-11-01T01:30-04:00",
            "2026-11-01T01:00-05:00",
            "2026-11-01T01:30-05:00",
            "2026-11-02T01:00-05:00",
        ],
    ),
]


@pytest.mark.parametrize(
    ("expression", "tz", "after", "expected"),
    DST_TABLE,
    ids=[f"{row[1]}:{row[0]}@{row[2]}" for row in DST_TABLE],
)
def test_fire_times_across_daylight_saving(
    expression: str, tz: ZoneInfo, after: str, expected: list[str]
) -> None:
    assert fire_times(expression, tz, after, len(expected)) == expected


def test_a_slot_after_the_first_run_of_a_repeated_hour_is_not_fired_again() -> None:
    daily = Schedule.parse("30 1 * * *", tz=NEW_YORK)
    first = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT
    assert daily.next_after(first) == datetime(2026, 11, 2, 6, 30, tzinfo=UTC)
    between = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)  # 01:00 EST, the second run
    assert daily.next_after(between) == datetime(2026, 11, 2, 6, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("tz", "night_utc"),
    [
        (BERLIN, datetime(2026, 10, 24, 22, 0, tzinfo=UTC)),
        (BERLIN, datetime(2026, 3, 28, 22, 0, tzinfo=UTC)),
        (NEW_YORK, datetime(2026, 11, 1, 4, 0, tzinfo=UTC)),
        (NEW_YORK, datetime(2026, 3, 8, 4, 0, tzinfo=UTC)),
    ],
)
@pytest.mark.parametrize("expression", ["30 2 * * *", "30 1 * * *", "0 2 * * *", "59 1 * * *"])
def test_a_daily_slot_comes_due_once_in_a_night_of_change(
    tz: ZoneInfo, night_utc: datetime, expression: str
) -> None:
    due = due_slots(
        Schedule.parse(expression, tz=tz),
        after=night_utc,
        now=night_utc + timedelta(hours=8),
        grace=timedelta(days=1),
    )
    assert len(due.missed) + (due.fire is not None) == 1


SYNTAX_TABLE = [
    ("@daily", "2026-01-01T00:00+08:00 2026-01-02T00:00+08:00"),
    ("@midnight", "2026-01-01T00:00+08:00 2026-01-02T00:00+08:00"),
    ("@DAILY", "2026-01-01T00:00+08:00 2026-01-02T00:00+08:00"),
    ("@hourly", "2025-12-31T13:00+08:00 2025-12-31T14:00+08:00"),
    ("@weekly", "2026-01-04T00:00+08:00 2026-01-11T00:00+08:00"),  # Sundays
    ("@monthly", "2026-01-01T00:00+08:00 2026-02-01T00:00+08:00"),
    ("@yearly", "2026-01-01T00:00+08:00 2027-01-01T00:00+08:00"),
    ("@annually", "2026-01-01T00:00+08:00 2027-01-01T00:00+08:00"),
    ("0 9 * * MON-FRI", "2026-01-01T09:00+08:00 2026-01-02T09:00+08:00 2026-01-05T09:00+08:00"),
    ("0 9 * * mon,wed", "2026-01-05T09:00+08:00 2026-01-07T09:00+08:00 2026-01-12T09:00+08:00"),
    ("0 9 * * FRI-SUN", "2026-01-02T09:00+08:00 2026-01-03T09:00+08:00 2026-01-04T09:00+08:00"),
    ("0 9 1 JAN-DEC *", "2026-01-01T09:00+08:00 2026-02-01T09:00+08:00"),
    ("0 9 1 MAR,SEP *", "2026-03-01T09:00+08:00 2026-09-01T09:00+08:00"),
    ("0 9 L * *", "2026-01-31T09:00+08:00 2026-02-28T09:00+08:00 2026-03-31T09:00+08:00"),
    ("0 9 L 2 *", "2026-02-28T09:00+08:00 2027-02-28T09:00+08:00 2028-02-29T09:00+08:00"),
    ("0 9 15,L * *", "2026-01-15T09:00+08:00 2026-01-31T09:00+08:00 2026-02-15T09:00+08:00"),
    ("0 9 * * FRI#2", "2026-01-09T09:00+08:00 2026-02-13T09:00+08:00"),
    ("0 9 * * 1#1,5#3", "2026-01-05T09:00+08:00 2026-01-16T09:00+08:00 2026-02-02T09:00+08:00"),
    ("0 9 * * 5#5", "2026-01-30T09:00+08:00 2026-05-29T09:00+08:00"),  # months with 5 Fridays
    ("0 9 * * L5", "2026-01-30T09:00+08:00 2026-02-27T09:00+08:00"),  # the last Friday
    ("0 9 * * 0", "2026-01-04T09:00+08:00 2026-01-11T09:00+08:00"),
    ("0 9 * * 7", "2026-01-04T09:00+08:00 2026-01-11T09:00+08:00"),
    ("0 9 ? * 3", "2026-01-07T09:00+08:00 2026-01-14T09:00+08:00"),
]


@pytest.mark.parametrize(("expression", "expected"), SYNTAX_TABLE)
def test_the_syntax_ops_people_write(expression: str, expected: str) -> None:
    times = expected.split()
    assert fire_times(expression, SHANGHAI, "2025-12-31T12:00", len(times)) == times


OR_RULE_TABLE = [
    # both day fields restricted: a day matching either one fires (Friday or the 13th)
    ("0 10 13 * 5", "2026-11-27 2026-12-04 2026-12-11 2026-12-13 2026-12-18"),
    # the same with L and #: the last day of the month or the second Friday
    ("0 10 L * 5#2", "2026-11-30 2026-12-11 2026-12-31 2027-01-08"),
    ("0 10 1 * FRI#2", "2026-12-01 2026-12-11 2027-01-01 2027-01-08"),
    # a day field starting with '*' (even '*/2') does not restrict: both must match
    ("0 10 */2 * 5", "2026-11-27 2026-12-11 2026-12-25 2027-01-01"),
    ("0 10 1-7 * *", "2026-12-01 2026-12-02"),
    ("0 10 * * 1-5", "2026-11-24 2026-11-25"),
]


@pytest.mark.parametrize(("expression", "expected"), OR_RULE_TABLE)
def test_day_of_month_or_day_of_week(expression: str, expected: str) -> None:
    days = expected.split()
    found = fire_times(expression, SHANGHAI, "2026-11-23T11:00", len(days))
    assert [at[:10] for at in found] == days


def test_february_29th_waits_for_a_leap_year() -> None:
    assert fire_times("0 0 29 2 *", BERLIN, "2026-03-01T00:00", 2) == [
        "2028-02-29T00:00+01:00",
        "2032-02-29T00:00+01:00",
    ]


def test_an_impossible_day_of_month_still_fires_by_its_weekday() -> None:
    # February has no 31st; its Mondays still fire
    assert fire_times("0 10 31 2 MON", SHANGHAI, "2026-01-01T00:00", 2) == [
        "2026-02-02T10:00+08:00",
        "2026-02-09T10:00+08:00",
    ]
