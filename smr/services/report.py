"""A playbook's report: its funnel over a range of local days, in total, per version, per send
step and per day, summed from the counts kept as runs and messages are decided
(``smr.services.funnel``), never from the runs themselves."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from smr.errors import InvalidInput
from smr.repositories import counts as repo
from smr.repositories.counts import CountKey
from smr.services.funnel import Metric

#: The longest range a report covers, and the one it covers unless told.
MAX_DAYS = 366
DEFAULT_DAYS = 30
_DAYS_AGO = re.compile(r"(\d{1,3})d")
#: The counts a run's funnel shows, and a send step's (refusals, exits by rule and skips
#: by reason are broken down).
RUN_METRICS = ("started", "refused", "converted", "completed", "exited", "failed", "cancelled")
SEND_METRICS = ("scheduled", "sent", "skipped", "failed", "awaiting", "cancelled")


@dataclass(frozen=True)
class Range:
    """Local days, both ends included."""

    since: date
    until: date

    @classmethod
    def parse(cls, since: str | None, until: str | None, *, now: datetime, tz: tzinfo) -> Range:
        """``since``: ``YYYY-MM-DD`` or ``30d`` (that many days back from today, today
        included); ``until``: ``YYYY-MM-DD``, today unless given. InvalidInput (422) with the
        parameter's name otherwise."""
        today = now.astimezone(tz).date()
        last = _day(until, "until") if until else today
        first = _since(since, last) if since else last - timedelta(days=DEFAULT_DAYS - 1)
        if first > last:
            raise _invalid("since", "must not be after until")
        if (last - first).days >= MAX_DAYS:
            raise _invalid("since", f"a report covers at most {MAX_DAYS} days")
        return cls(first, last)


def _since(text: str, last: date) -> date:
    if found := _DAYS_AGO.fullmatch(text.strip()):
        return last - timedelta(days=max(int(found[1]), 1) - 1)
    return _day(text, "since")


def _day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise _invalid(name, f"'{text[:40]}' is not a day: write 2026-11-23, or 30d") from None


def _invalid(name: str, message: str) -> InvalidInput:
    return InvalidInput(f"Bad {name}.", errors=[{"path": f"query.{name}", "message": message}])


async def report(session: AsyncSession, playbook_id: str, span: Range) -> dict[str, Any]:
    """The report of ``playbook_id`` over ``span`` (see the module's docstring)."""
    counts = await repo.summed(
        session, playbook_id, since=span.since.isoformat(), until=span.until.isoformat()
    )
    by_version: defaultdict[str, Counter[CountKey]] = defaultdict(Counter)
    for key, n in counts.items():
        by_version[key.version][key] += n
    return {
        "playbook": playbook_id,
        "since": span.since.isoformat(),
        "until": span.until.isoformat(),
        **funnel(counts),
        "versions": [
            {"version": version, **funnel(found)} for version, found in sorted(by_version.items())
        ],
        "days": _days(counts),
    }


def funnel(counts: Counter[CountKey]) -> dict[str, Any]:
    """``runs`` (each run metric; refusals by reason, exits by rule) and ``steps`` (each send
    step's metrics; skips by reason)."""
    runs: dict[str, Any] = dict.fromkeys(RUN_METRICS, 0)
    runs["refused_by"], runs["exited_by"] = Counter[str](), Counter[str]()
    steps: defaultdict[str, dict[str, Any]] = defaultdict(_step)
    for key, n in counts.items():
        kind, _, name = key.metric.partition(".")
        metric, _, reason = name.partition(".")
        if kind == "run":
            runs[metric] = runs.get(metric, 0) + n
            if metric == "refused":
                runs["refused_by"][reason] += n
            elif metric == "exited":
                runs["exited_by"][key.step or "other"] += n
        else:
            step = steps[key.step]
            step[metric] = step.get(metric, 0) + n
            if metric == "skipped":
                step["skipped_by"][reason or "other"] += n
    return {
        "runs": {
            **runs,
            "refused_by": dict(runs["refused_by"]),
            "exited_by": dict(runs["exited_by"]),
        },
        "steps": [
            {"step": name, **values, "skipped_by": dict(values["skipped_by"])}
            for name, values in sorted(steps.items(), key=lambda item: _step_order(item[0]))
        ],
    }


def _step() -> dict[str, Any]:
    return {**dict.fromkeys(SEND_METRICS, 0), "skipped_by": Counter[str]()}


def _step_order(step: str) -> list[Any]:
    """``steps[2].then[10]`` after ``steps[2].then[9]``: numbers compared as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", step)]


#: What each day of a report shows.
DAY_METRICS = {
    "started": Metric.STARTED,
    "converted": Metric.CONVERTED,
    "completed": Metric.COMPLETED,
    "exited": Metric.EXITED,
    "sent": Metric.SENT,
    "failed": Metric.SEND_FAILED,
}


def _days(counts: Counter[CountKey]) -> list[dict[str, Any]]:
    days: defaultdict[str, dict[str, int]] = defaultdict(
        lambda: dict.fromkeys([*DAY_METRICS, "skipped"], 0)
    )
    names = {str(metric): name for name, metric in DAY_METRICS.items()}
    for key, n in counts.items():
        if key.metric in names:
            days[key.day][names[key.metric]] += n
        elif key.metric.startswith(Metric.SKIPPED):
            days[key.day]["skipped"] += n
    return [{"day": day, **row} for day, row in sorted(days.items())]
