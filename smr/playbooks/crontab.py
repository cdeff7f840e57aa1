"""The cron text a schedule trigger accepts, checked with messages ops people can act on.

Five fields (minute hour day-of-month month day-of-week) or an alias (``@daily`` …). A field is
``*``, a number, a name (``JAN``–``DEC``, ``SUN``–``SAT``, any case), a range ``a-b``, a step
``*/n``, ``a/n`` or ``a-b/n``, or a comma list of those. Day-of-week 0 and 7 are Sunday (a range
may end at ``SUN``: ``FRI-SUN``). Day-of-month also takes ``L`` (the last day of the month) and
day-of-week ``5#2`` (the second Friday) and ``L5`` (the last Friday); ``?`` stands for ``*`` in
either day field.

What passes is handed to croniter as plain number lists (plus ``*``, ``L``, ``n#k``, ``Ln``):
croniter reads a range like ``10-10`` as the whole cycle and a reversed one as wrapping round,
where crontab means hour 10 and refuses the reversed range.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import NamedTuple

from croniter import CroniterBadDateError, CroniterError, croniter

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_STEPS = "'*', 'a-b', '*/n', 'a-b/n' or a list of those"


class _Field(NamedTuple):
    name: str
    low: int
    high: int
    names: dict[str, int]
    takes: str  # what an item may be, for the error message


_MINUTE = _Field("minute", 0, 59, {}, f"a number 0-59, {_STEPS}")
_HOUR = _Field("hour", 0, 23, {}, f"a number 0-23, {_STEPS}")
_DOM = _Field("day-of-month", 1, 31, {}, f"a number 1-31, 'L' (the last day), {_STEPS}")
_MONTH = _Field(
    "month", 1, 12, {m: i for i, m in enumerate(_MONTHS, 1)}, f"a number 1-12, JAN-DEC, {_STEPS}"
)
_DOW = _Field(
    "day-of-week",
    0,
    7,
    {d: i for i, d in enumerate(_WEEKDAYS)},
    "a number 0-7 (0 and 7 are Sunday), SUN-SAT, '5#2' (the second Friday),"
    f" 'L5' (the last Friday), {_STEPS}",
)
_NTH_WEEKDAY = re.compile(r"(?P<day>\w+)#(?P<nth>\d+)")
_LAST_WEEKDAY = re.compile(r"L(?P<day>\w+)", re.IGNORECASE)
_QUARTZ_LAST = re.compile(r"(?P<day>\w+)L", re.IGNORECASE)
#: croniter looks 50 years ahead; whatever five fields name comes round within 28 years.
_REFERENCE = datetime(2000, 1, 1, tzinfo=UTC)


class Crontab(NamedTuple):
    """A checked expression: croniter-ready fields and the crontab rules that apply to it."""

    minute: str
    hour: str
    dom: str
    month: str
    dow: str
    days_either: bool  # both day fields restricted: a day matching either one fires
    follows_clock: bool  # minute or hour starts with '*'

    def expressions(self) -> tuple[str, ...]:
        """One croniter expression, or two (day-of-month, day-of-week) under ``days_either``;
        croniter reads each with ``day_or=False``: its own OR rule differs from crontab's."""
        fields = (self.minute, self.hour, self.dom, self.month, self.dow)
        if not self.days_either:
            return (" ".join(fields),)
        by_dom = (self.minute, self.hour, self.dom, self.month, "*")
        by_dow = (self.minute, self.hour, "*", self.month, self.dow)
        return " ".join(by_dom), " ".join(by_dow)


class _Problem(ValueError):
    pass


def parse_crontab(expression: str) -> Crontab:
    """Check ``expression`` (5 fields or an alias); ValueError says what is wrong."""
    try:
        crontab = _parse(expression)
        fires = any(_finds_a_date(text) for text in crontab.expressions())
    except _Problem as problem:
        raise ValueError(f"bad cron '{expression}': {problem}") from None
    except CroniterError as error:  # a form the checks above let through and croniter refuses
        raise ValueError(f"bad cron '{expression}': {error}") from error
    if not fires:
        raise ValueError(f"bad cron '{expression}': never fires (no month has that day)")
    return crontab


def _parse(expression: str) -> Crontab:
    text = expression.strip()
    if text.startswith("@"):
        if text.lower() not in ALIASES:
            raise _Problem(f"unknown alias, use one of {', '.join(ALIASES)}")
        text = ALIASES[text.lower()]
    parts = text.split()
    if len(parts) != 5:
        raise _Problem(f"expected 5 fields, got {len(parts)}")
    minute, hour, dom, month, dow = (
        _field(part, spec)
        for part, spec in zip(parts, (_MINUTE, _HOUR, _DOM, _MONTH, _DOW), strict=True)
    )
    return Crontab(
        minute,
        hour,
        dom,
        month,
        dow,
        days_either=_restricts(parts[2]) and _restricts(parts[4]),
        follows_clock=parts[0].startswith("*") or parts[1].startswith("*"),
    )


def _restricts(day_field: str) -> bool:
    """Crontab's rule: a day field starting with ``*`` (``*/2`` too) or ``?`` is unrestricted."""
    return not day_field.startswith(("*", "?"))


def _finds_a_date(text: str) -> bool:
    try:
        croniter(text, _REFERENCE, day_or=False).get_next(datetime)
    except CroniterBadDateError:
        return False
    return True


def _field(text: str, spec: _Field) -> str:
    """The field as croniter should read it, or _Problem."""
    if text == "*" or (text == "?" and spec in (_DOM, _DOW)):
        return "*"
    items = text.split(",")
    special = [item for item in items if _is_special(item, spec)]
    if spec is _DOW and special and len(special) < len(items):
        raise _Problem(
            f"{spec.name} '{text}' mixes '#' or 'L' days with plain days:"
            " give them separate playbooks"
        )
    numbers = sorted({n for item in items if item not in special for n in _numbers(item, spec)})
    return ",".join([*map(str, numbers), *(_special(item, spec) for item in special)])


def _is_special(item: str, spec: _Field) -> bool:
    if spec is _DOM:
        return item.upper() == "L"
    return spec is _DOW and ("#" in item or "L" in item.upper())


def _special(item: str, spec: _Field) -> str:
    """``L`` (day-of-month), ``5#2`` and ``L5`` (day-of-week), Sunday written 0."""
    if spec is _DOM:
        return "L"
    if _QUARTZ_LAST.fullmatch(item):
        raise _Problem(f"{spec.name} '{item}': write 'L{item[:-1]}' for the last one of a month")
    match = _NTH_WEEKDAY.fullmatch(item) or _LAST_WEEKDAY.fullmatch(item)
    if match is None:
        raise _Problem(f"{spec.name} '{item}' is not {spec.takes}")
    day = _value(match.group("day"), spec)
    if day is None or not 0 <= day <= 7:
        raise _Problem(
            f"{spec.name} '{item}' needs a weekday 0-7 or SUN-SAT before '#' or after 'L'"
        )
    if "#" not in item:
        return f"L{day % 7}"
    if not 1 <= int(match.group("nth")) <= 5:
        raise _Problem(f"{spec.name} '{item}': the week after '#' is 1-5")
    return f"{day % 7}#{match.group('nth')}"


def _numbers(item: str, spec: _Field) -> range | list[int]:
    """The values of ``*/n``, ``a``, ``a-b``, ``a/n`` or ``a-b/n`` (day-of-week 7 as 0)."""
    base, slash, step_text = item.partition("/")
    if slash and (not step_text.isdigit() or int(step_text) == 0):
        raise _Problem(f"{spec.name} '{item}' has a bad step")
    step = int(step_text) if slash else 1
    first, last = _bounds(base, item, spec, stepped=bool(slash))
    values = range(first, last + 1, step)
    return [value % 7 for value in values] if spec is _DOW else values


def _bounds(base: str, item: str, spec: _Field, *, stepped: bool) -> tuple[int, int]:
    if base == "*":
        return spec.low, spec.high
    start, dash, end = base.partition("-")
    first, last = _value(start, spec), _value(end, spec) if dash else None
    if first is None or (dash and last is None):
        raise _Problem(f"{spec.name} '{item}' is not {spec.takes}")
    if last is None:
        last = spec.high if stepped else first  # 'a/n' runs to the end of the field
    if dash and spec is _DOW and last == 0:
        last = 7  # FRI-SUN: Sunday closes the week
    if not (spec.low <= first <= spec.high and spec.low <= last <= spec.high):
        raise _Problem(f"{spec.name} '{item}' is out of range {spec.low}-{spec.high}")
    if first > last:
        raise _Problem(f"{spec.name} '{item}' is an empty range")
    return first, last


def _value(text: str, spec: _Field) -> int | None:
    if text.isascii() and text.isdigit():
        return int(text)
    return spec.names.get(text.upper())
