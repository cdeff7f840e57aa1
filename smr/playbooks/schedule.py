"""Cron fire times for schedule playbooks, and which slots fire or count as missed.

Expressions follow crontab: day-of-week 0 and 7 are Sunday, and when both day-of-month and
day-of-week are restricted (neither starts with ``*``) a day matching either one fires.
APScheduler 3 numbers weekdays from Monday (``from_crontab`` included) and requires both fields
to match, so the day-of-week field is translated here and such an expression becomes two
triggers whose earliest fire time wins.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo

from apscheduler.triggers.cron import CronTrigger

#: At most this many missed slots are recorded per playbook and tick (the most recent ones);
#: a long outage on a frequent schedule would otherwise write a row per minute it was down.
MAX_MISSED = 100
_ONE_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Schedule:
    """A 5-field crontab expression in a timezone."""

    triggers: tuple[CronTrigger, ...]

    @classmethod
    def parse(cls, expression: str, *, tz: tzinfo) -> Schedule:
        minute, hour, dom, month, dow = expression.split()
        weekdays = "*" if dow == "*" else _apscheduler_weekdays(dow)
        if dom.startswith("*") or dow.startswith("*"):
            return cls((_trigger((minute, hour, dom, month, weekdays), tz=tz),))
        return cls(
            (
                _trigger((minute, hour, dom, month, "*"), tz=tz),
                _trigger((minute, hour, "*", month, weekdays), tz=tz),
            )
        )

    def next_after(self, moment: datetime) -> datetime | None:
        """The first fire time strictly after ``moment`` (aware UTC), or None if none is left."""
        start = moment + _ONE_MICROSECOND
        found = [t.get_next_fire_time(None, start) for t in self.triggers]
        times = [f.astimezone(UTC) for f in found if f is not None]
        return min(times, default=None)


@dataclass
class DueSlots:
    """Slots that came due in ``(after, now]``: at most one to fire, the rest missed."""

    fire: datetime | None = None
    missed: list[datetime] = field(default_factory=list)
    missed_unrecorded: int = 0


def due_slots(schedule: Schedule, *, after: datetime, now: datetime, grace: timedelta) -> DueSlots:
    """Fire the most recent slot up to ``now`` if it is at most ``grace`` old; every older
    slot (and the most recent one beyond the grace) is missed, never replayed."""
    recent: deque[datetime] = deque(maxlen=MAX_MISSED + 1)
    count = 0
    slot = schedule.next_after(after)
    while slot is not None and slot <= now:
        recent.append(slot)
        count += 1
        slot = schedule.next_after(slot)
    if not recent:
        return DueSlots()
    latest = recent.pop()
    fire = latest if now - latest <= grace else None
    missed = list(recent) if fire is not None else [*recent, latest]
    missed = missed[-MAX_MISSED:]
    return DueSlots(fire=fire, missed=missed, missed_unrecorded=count - len(missed) - bool(fire))


def _trigger(fields: tuple[str, str, str, str, str], *, tz: tzinfo) -> CronTrigger:
    minute, hour, dom, month, dow = fields
    return CronTrigger(minute=minute, hour=hour, day=dom, month=month, day_of_week=dow, timezone=tz)


def _apscheduler_weekdays(field_text: str) -> str:
    """Crontab day-of-week (Sunday 0 or 7) → APScheduler's list (Monday 0)."""
    days = {day % 7 for item in field_text.split(",") for day in _expand(item, low=0, high=7)}
    return ",".join(str((day - 1) % 7) for day in sorted(days))


def _expand(item: str, *, low: int, high: int) -> range:
    base, _, step_text = item.partition("/")
    step = int(step_text) if step_text else 1
    if base == "*":
        return range(low, high + 1, step)
    first, dash, last = base.partition("-")
    end = int(last) if dash else (high if step_text else int(first))
    return range(int(first), end + 1, step)
