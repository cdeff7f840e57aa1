"""Durations (``90s``, ``25d``), wall-clock times (``10:00``) and cron expressions."""

import re
from datetime import datetime, time, timedelta, tzinfo

from smr.playbooks.crontab import parse_crontab

_DURATION = re.compile(r"(\d+)([smhd])")
_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
#: The longest duration (a wait, a cooldown, a cap's window): ten years. Waits are measured from
#: times before 2100 (see ``smr.schemas.LATEST``), so every wake time stays representable.
MAX_DURATION = timedelta(days=3650)


class DurationTooLong(ValueError):
    """A well-formed duration over :data:`MAX_DURATION`."""


_CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


def parse_duration(text: str) -> timedelta:
    """Parse ``<integer><s|m|h|d>`` up to :data:`MAX_DURATION`; raise ValueError with a
    user-facing message otherwise."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"bad duration '{text}': use a number followed by s, m, h or d")
    digits, unit = match.groups()
    # Compared before a timedelta is made: timedelta(days=10**10) raises OverflowError.
    if len(digits) > 12 or int(digits) * _SECONDS[unit] > MAX_DURATION.total_seconds():
        bound = format_duration(MAX_DURATION)
        raise DurationTooLong(f"duration '{text.strip()}' is over the bound of {bound} (ten years)")
    return timedelta(seconds=int(digits) * _SECONDS[unit])


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in _SECONDS.items():
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_clock(text: str) -> time:
    """Parse ``HH:MM`` (24-hour)."""
    match = _CLOCK.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"bad time '{text}': use HH:MM, e.g. 09:30")
    return time(int(match.group(1)), int(match.group(2)))


def next_wall_time(after: datetime, at: time, *, tz: tzinfo) -> datetime:
    """Return the first moment strictly after ``after`` whose local time in ``tz`` is ``at``."""
    local = after.astimezone(tz)
    candidate = datetime.combine(local.date(), at, tzinfo=tz)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), at, tzinfo=tz)
    return candidate


def validate_cron(expression: str) -> str:
    """Check a cron expression (5 fields or an alias, see ``smr.playbooks.crontab``); return it
    unchanged or raise ValueError."""
    parse_crontab(expression)
    return expression
