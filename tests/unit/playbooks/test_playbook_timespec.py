import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from smr.playbooks.timespec import (
    format_duration,
    next_wall_time,
    parse_clock,
    parse_duration,
    validate_cron,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0s", timedelta(0)),
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("2h", timedelta(hours=2)),
        ("25d", timedelta(days=25)),
        (" 3d\n", timedelta(days=3)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["3x", "d", "1.5h", "-1d", "3 d", "", "1w"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="use a number followed by s, m, h or d"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(timedelta(days=2), "2d"), (timedelta(hours=5), "5h"), (timedelta(seconds=90), "90s")],
)
def test_format_duration(value: timedelta, expected: str) -> None:
    assert format_duration(value) == expected


def test_parse_clock() -> None:
    assert parse_clock("09:05") == time(9, 5)
    for bad in ("9:05", "24:00", "10:60", "10"):
        with pytest.raises(ValueError, match="use HH:MM"):
            parse_clock(bad)


@pytest.mark.parametrize(
    ("after", "at", "expected"),
    [
        # 08:00 local → 10:00 the same day
        (datetime(2024, 5, 1, 0, 0, tzinfo=UTC), time(10), datetime(2024, 5, 1, 2, tzinfo=UTC)),
        # exactly 10:00 local is not strictly after → tomorrow
        (datetime(2024, 5, 1, 2, 0, tzinfo=UTC), time(10), datetime(2024, 5, 2, 2, tzinfo=UTC)),
        # 23:30 local, waiting for 00:15 crosses midnight
        (
            datetime(2024, 5, 1, 15, 30, tzinfo=UTC),
            time(0, 15),
            datetime(2024, 5, 1, 16, 15, tzinfo=UTC),
        ),
    ],
)
def test_next_wall_time(after: datetime, at: time, expected: datetime) -> None:
    assert next_wall_time(after, at, tz=SHANGHAI) == expected


@pytest.mark.parametrize(
    "expression", ["0 10 * * 5", "*/15 0-6,22,23 1 1-12/2 0,7", "59 23 31 12 6"]
)
def test_validate_cron_accepts(expression: str) -> None:
    assert validate_cron(expression) == expression


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("0 10 * *", "expected 5 fields, got 4"),
        ("60 10 * * 5", "minute '60' is out of range 0-59"),
        ("0 24 * * 5", "hour '24' is out of range 0-23"),
        ("0 10 0 * 5", "day-of-month '0' is out of range 1-31"),
        ("0 10 * 13 5", "month '13' is out of range 1-12"),
        ("0 10 * * 8", "day-of-week '8' is out of range 0-7"),
        ("*/0 10 * * 5", "minute '*/0' has a bad step"),
        ("0 10 * * FRY", "day-of-week 'FRY' is not a number 0-7 (0 and 7 are Sunday), SUN-SAT"),
        ("0 10-5 * * 5", "hour '10-5' is an empty range"),
    ],
)
def test_validate_cron_rejects(expression: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"bad cron '{expression}': {problem}")):
        validate_cron(expression)
