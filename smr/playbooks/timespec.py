"""Durations (``90s``, ``25d``), wall-clock times (``10:00``) and 5-field cron expressions."""

import re
from datetime import datetime, time, timedelta, tzinfo

_DURATION = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_CRON_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
)


def parse_duration(text: str) -> timedelta:
    """Parse ``<integer><s|m|h|d>``; raise ValueError with a user-facing message otherwise."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"bad duration '{text}': use a number followed by s, m, h or d")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
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
    """Check a standard 5-field cron expression; return it unchanged or raise ValueError."""
    fields = expression.split()
    if len(fields) != len(_CRON_FIELDS):
        raise ValueError(f"bad cron '{expression}': expected 5 fields, got {len(fields)}")
    for text, (name, low, high) in zip(fields, _CRON_FIELDS, strict=True):
        problem = _cron_field_problem(text, low=low, high=high)
        if problem:
            raise ValueError(f"bad cron '{expression}': {name} {problem}")
    return expression


def _cron_field_problem(text: str, *, low: int, high: int) -> str | None:
    for item in text.split(","):
        problem = _cron_item_problem(item, low=low, high=high)
        if problem:
            return problem
    return None


def _cron_item_problem(item: str, *, low: int, high: int) -> str | None:
    base, slash, step = item.partition("/")
    if slash and (not step.isdigit() or int(step) == 0):
        return f"'{item}' has a bad step"
    if base == "*":
        return None
    start, dash, end = base.partition("-")
    bounds = [start, end] if dash else [start]
    if not all(part.isdigit() for part in bounds):
        return f"'{item}' is not a number, '*', '*/n', 'a-b' or a list of those"
    values = [int(part) for part in bounds]
    if any(not low <= value <= high for value in values):
        return f"'{item}' is out of range {low}-{high}"
    if dash and values[0] > values[1]:
        return f"'{item}' is an empty range"
    return None
