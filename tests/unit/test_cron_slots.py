"""Cron fire times (crontab semantics in the policies' timezone) and the grace policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from smr.playbooks.schedule import MAX_MISSED, Schedule, due_slots

SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY_11 = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)  # Monday 11:00 in Shanghai
HOURLY = Schedule.parse("0 * * * *", tz=SHANGHAI)
HOUR = timedelta(hours=1)


def fire_times(expression: str, count: int, *, after: datetime = MONDAY_11) -> list[str]:
    schedule = Schedule.parse(expression, tz=SHANGHAI)
    found, moment = [], after
    for _ in range(count):
        nxt = schedule.next_after(moment)
        assert nxt is not None
        found.append(nxt.astimezone(SHANGHAI).strftime("%a %d %H:%M"))
        moment = nxt
    return found


@pytest.mark.parametrize("sunday", ["0", "7"])
def test_day_of_week_counts_sunday_as_0_and_7(sunday: str) -> None:
    assert fire_times(f"0 10 * * {sunday}", 2) == ["Sun 29 10:00", "Sun 06 10:00"]


def test_weekday_range_is_monday_to_friday() -> None:
    assert fire_times("30 9 * * 1-5", 5) == [
        "Tue 24 09:30",
        "Wed 25 09:30",
        "Thu 26 09:30",
        "Fri 27 09:30",
        "Mon 30 09:30",
    ]


def test_weekday_step_follows_crontab() -> None:
    assert fire_times("0 8 * * */3", 3) == ["Wed 25 08:00", "Sat 28 08:00", "Sun 29 08:00"]


def test_restricted_day_of_month_or_day_of_week_fires_on_either() -> None:
    assert fire_times("0 10 13 * 5", 4) == [
        "Fri 27 10:00",
        "Fri 04 10:00",
        "Fri 11 10:00",
        "Sun 13 10:00",
    ]


def test_fire_times_are_in_the_given_timezone_and_strictly_after() -> None:
    at_ten_local = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    assert HOURLY.next_after(at_ten_local) == datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
    daily = Schedule.parse("0 10 * * *", tz=SHANGHAI)
    assert daily.next_after(MONDAY_11) == datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def test_nothing_due_before_the_next_fire_time() -> None:
    due = due_slots(HOURLY, after=MONDAY_11, now=MONDAY_11 + timedelta(minutes=59), grace=HOUR)
    assert (due.fire, due.missed) == (None, [])


def test_a_slot_just_due_fires() -> None:
    due = due_slots(
        HOURLY, after=MONDAY_11, now=MONDAY_11 + timedelta(hours=1, seconds=1), grace=HOUR
    )
    assert due.fire == MONDAY_11 + HOUR
    assert due.missed == []


def test_after_downtime_only_the_most_recent_slot_fires() -> None:
    due = due_slots(
        HOURLY, after=MONDAY_11, now=MONDAY_11 + timedelta(hours=3, minutes=5), grace=HOUR
    )
    assert due.fire == MONDAY_11 + 3 * HOUR
    assert due.missed == [MONDAY_11 + HOUR, MONDAY_11 + 2 * HOUR]


def test_beyond_the_grace_every_slot_is_missed() -> None:
    daily = Schedule.parse("0 10 * * *", tz=SHANGHAI)
    now = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)  # Wednesday 13:00, 3 h after the last slot
    due = due_slots(daily, after=MONDAY_11, now=now, grace=HOUR)
    assert due.fire is None
    assert due.missed == [
        datetime(2026, 11, 24, 2, 0, tzinfo=UTC),
        datetime(2026, 11, 25, 2, 0, tzinfo=UTC),
    ]


def test_zero_grace_fires_only_a_slot_due_exactly_now() -> None:
    now = MONDAY_11 + HOUR
    assert due_slots(HOURLY, after=MONDAY_11, now=now, grace=timedelta(0)).fire == now
    late = due_slots(HOURLY, after=MONDAY_11, now=now + timedelta(seconds=1), grace=timedelta(0))
    assert (late.fire, late.missed) == (None, [now])


def test_a_long_outage_records_only_the_most_recent_missed_slots() -> None:
    minutely = Schedule.parse("* * * * *", tz=SHANGHAI)
    now = MONDAY_11 + timedelta(days=1)
    due = due_slots(minutely, after=MONDAY_11, now=now, grace=HOUR)
    assert due.fire == now
    assert len(due.missed) == MAX_MISSED
    assert due.missed[-1] == now - timedelta(minutes=1)
    assert due.missed_unrecorded == 24 * 60 - 1 - MAX_MISSED
