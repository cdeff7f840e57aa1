"""Cron fire times for schedule playbooks, and which slots fire or count as missed.

croniter computes the fire times in the policies' timezone (the syntax is in
``smr.playbooks.crontab``). Crontab rules kept here:

- When both day-of-month and day-of-week are restricted (neither starts with ``*`` or ``?``),
  a day matching either one fires (Vixie cron's OR rule), ``L`` and ``#`` included: such an
  expression is two croniter expressions (a day-of-month half and a day-of-week half) whose
  fire times merge. croniter's own ``day_or`` would count ``*/2`` as restricted and keep ``#``
  an AND, so each expression is read with ``day_or=False``.
- Daylight saving, spring forward: a slot whose wall time does not exist that day (02:30 in
  Berlin on the last Sunday of March) fires once, at the first moment after the gap (03:00);
  with ``*`` in the hour field the missing hour simply has no slots.
- Daylight saving, fall back: a wall time that happens twice fires at its first occurrence only,
  unless the minute or hour field starts with ``*`` (``*/15 * * * *``, ``@hourly``): such a
  schedule follows the clock and fires in both hours, each being a real hour.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo

from croniter import CroniterBadDateError, croniter

from smr.playbooks.crontab import parse_crontab

#: At most this many missed slots are recorded per playbook and tick (the most recent ones);
#: a long outage on a frequent schedule would otherwise write a row per minute it was down.
MAX_MISSED = 100


@dataclass(frozen=True)
class Schedule:
    """A crontab expression in a timezone."""

    expressions: tuple[str, ...]  # one, or the two halves of the day-of-month/week OR rule
    tz: tzinfo
    follows_clock: bool  # minute or hour starts with '*': fires in both runs of a repeated hour

    @classmethod
    def parse(cls, expression: str, *, tz: tzinfo) -> Schedule:
        """Raises ValueError (``bad cron '…': …``) for what a playbook could not load with."""
        crontab = parse_crontab(expression)
        return cls(crontab.expressions(), tz, crontab.follows_clock)

    def next_after(self, moment: datetime) -> datetime | None:
        """The first fire time strictly after ``moment`` (aware UTC), or None if none is left."""
        return next(self.fire_times(moment), None)

    def fire_times(self, after: datetime) -> Iterator[datetime]:
        """Fire times strictly after ``after``, in order, each once, aware UTC."""
        previous = None
        for at in heapq.merge(*(self._half(text, after) for text in self.expressions)):
            if at != previous:
                yield at
            previous = at

    def _half(self, expression: str, after: datetime) -> Iterator[datetime]:
        times = croniter(expression, after.astimezone(self.tz), day_or=False)
        while True:
            try:
                local: datetime = times.get_next(datetime)
            except CroniterBadDateError:  # this half names no date (the 31st of February)
                return
            if self.follows_clock or not _second_run_of_wall_time(local, self.tz):
                yield local.astimezone(UTC)


def _second_run_of_wall_time(moment: datetime, tz: tzinfo) -> bool:
    """Whether ``moment`` is the second occurrence of its local time (the hour after fall back)."""
    local = moment.astimezone(tz)
    return local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset()


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
    for slot in schedule.fire_times(after):
        if slot > now:
            break
        recent.append(slot)
        count += 1
    if not recent:
        return DueSlots()
    latest = recent.pop()
    fire = latest if now - latest <= grace else None
    missed = list(recent) if fire is not None else [*recent, latest]
    missed = missed[-MAX_MISSED:]
    return DueSlots(fire=fire, missed=missed, missed_unrecorded=count - len(missed) - bool(fire))
