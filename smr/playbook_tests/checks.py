"""Whether a simulation shows what a case expects; when not, what it shows instead, in the
words an ops person reads (``expected … got …``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from smr.playbook_tests.schema import Expectation, Members, SentMessage, offset
from smr.simulate import Entry, Simulation

MESSAGE_KINDS = ("send", "notify")
#: Messages shown when an expected one is missing, and characters of each text.
SHOWN = 3
TEXT_SHOWN = 40


def failure(expectation: Expectation, simulation: Simulation, *, start: datetime) -> str | None:
    """Why ``simulation`` does not show ``expectation`` (None when it does)."""
    clock = _Clock(start, simulation.tz)
    if expectation.send is not None:
        return _send(expectation.send, expectation.at, simulation, clock)
    if expectation.not_sent is not None:
        return _not_sent(expectation.not_sent, simulation, clock)
    if expectation.converted is not None:
        return _converted(expectation.converted, expectation.at, simulation, clock)
    contact = simulation.contact or {}
    if expectation.tags is not None:
        return _members("tags", expectation.tags, contact.get("tags", []))
    if expectation.segments is not None:
        return _members("segments", expectation.segments, contact.get("segments", []))
    attributes = expectation.attributes or {}
    found = contact.get("attributes", {})
    wrong = {k: v for k, v in attributes.items() if k not in found or found[k] != v}
    if not wrong:
        return None
    got = {k: found.get(k, "(none)") for k in wrong}
    return f"expected attributes {_show_dict(wrong)}, got {_show_dict(got)}"


class _Clock:
    """Times as an ops person reads them: "day 3 10:00" from the case's start."""

    def __init__(self, start: datetime, tz: ZoneInfo) -> None:
        self.start = start
        self.tz = tz

    def matches(self, at: datetime, moment: str | None) -> bool:
        if moment is None:
            return True
        duration, time_of_day, whole_day = offset(moment)
        target = (self.start + duration).astimezone(self.tz)
        local = at.astimezone(self.tz)
        if whole_day:
            return local.date() == target.date()
        if time_of_day is not None:
            hour, minute = time_of_day
            return (local.date(), local.hour, local.minute, local.second) == (
                target.date(),
                hour,
                minute,
                0,
            )
        return at == target

    def day(self, at: datetime) -> str:
        local = at.astimezone(self.tz)
        days = (local.date() - self.start.astimezone(self.tz).date()).days
        return f"day {days} {local:%H:%M}"


def _send(
    wanted: SentMessage, moment: str | None, simulation: Simulation, clock: _Clock
) -> str | None:
    messages = [e for e in simulation.timeline if e.kind in MESSAGE_KINDS]
    if any(_is(e, wanted) and clock.matches(e.at, moment) for e in messages):
        return None
    near = [e for e in messages if wanted.playbook in (None, e.playbook)]
    when = f" on {moment}" if moment else ""
    got = "; ".join(_show(e, clock) for e in near[:SHOWN]) or "no message" + (
        f" from {wanted.playbook}" if wanted.playbook else ""
    )
    more = f" (and {len(near) - SHOWN} more)" if len(near) > SHOWN else ""
    return f"expected {_describe(wanted)}{when}, got {got}{more}"


def _is(entry: Entry, wanted: SentMessage) -> bool:
    return (
        wanted.playbook in (None, entry.playbook)
        and wanted.channel in (None, entry.channel)
        and entry.status == wanted.status
        and (wanted.reason is None or (entry.reason or "").startswith(wanted.reason))
        and all(part in (entry.text or "") for part in _texts(wanted))
    )


def _texts(wanted: SentMessage) -> list[str]:
    if wanted.text_contains is None:
        return []
    return [wanted.text_contains] if isinstance(wanted.text_contains, str) else wanted.text_contains


def _describe(wanted: SentMessage) -> str:
    said = [f"a {wanted.status} message" + (f" ({wanted.reason})" if wanted.reason else "")]
    if wanted.playbook:
        said.append(f"from {wanted.playbook}")
    if wanted.channel:
        said.append(f"on {wanted.channel}")
    said += [f"containing '{text}'" for text in _texts(wanted)]
    return " ".join(said)


def _not_sent(playbook: str, simulation: Simulation, clock: _Clock) -> str | None:
    sent = [
        e
        for e in simulation.timeline
        if e.kind in MESSAGE_KINDS and e.playbook == playbook and e.status == "sent"
    ]
    if not sent:
        return None
    return f"expected no message from {playbook}, got " + "; ".join(
        _show(e, clock) for e in sent[:SHOWN]
    )


def _converted(
    playbook: str, moment: str | None, simulation: Simulation, clock: _Clock
) -> str | None:
    reached = [e for e in simulation.timeline if e.kind == "goal" and e.playbook == playbook]
    if any(clock.matches(e.at, moment) for e in reached):
        return None
    when = f" on {moment}" if moment else ""
    got = "; ".join(clock.day(e.at) for e in reached) or "no run of it converted"
    return f"expected a run of {playbook} to reach its goal{when}, got {got}"


def _show(entry: Entry, clock: _Clock) -> str:
    text = entry.text or ""
    text = text if len(text) <= TEXT_SHOWN else text[:TEXT_SHOWN] + "…"
    outcome = f"{entry.status}:{entry.reason}" if entry.reason else entry.status
    return f"{clock.day(entry.at)} {entry.playbook} {entry.channel} {outcome} '{text}'"


def _members(name: str, wanted: Members, found: Iterable[str]) -> str | None:
    have = list(found)
    missing = [m for m in wanted.include if m not in have]
    present = [m for m in wanted.exclude if m in have]
    if not missing and not present:
        return None
    said = [f"{name} to include {missing}"] if missing else []
    said += [f"{name} not to include {present}"] if present else []
    return f"expected {' and '.join(said)}, got {have}"


def _show_dict(values: dict[str, object]) -> str:
    return "{" + ", ".join(f"{k}: {v!r}" for k, v in values.items()) + "}"
