"""What a simulation runs: the playbooks with their policies, the scenario's events and how far
ahead to look."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import PlainSerializer, PlainValidator, ValidationError

from smr.playbooks import (
    LoadedPlaybook,
    LoadResult,
    PlaybookError,
    Policies,
    format_duration,
    load_text,
    parse_duration,
)
from smr.schemas import EventIn, parse_events

DEFAULT_HORIZON = timedelta(days=60)
MAX_HORIZON = timedelta(days=366)
MAX_EVENTS = 1000
Loc = tuple[str | int, ...]


def parse_horizon(value: Any) -> timedelta:
    """``60d`` (any duration up to 366d) → a timedelta; ValueError with a message otherwise."""
    horizon = value if isinstance(value, timedelta) else parse_duration(str(value))
    if not timedelta(0) < horizon <= MAX_HORIZON:
        raise ValueError(f"horizon must be more than 0s and at most {format_duration(MAX_HORIZON)}")
    return horizon


Horizon = Annotated[
    timedelta, PlainValidator(parse_horizon), PlainSerializer(format_duration, return_type=str)
]


@dataclass(frozen=True)
class Problem:
    loc: Loc
    message: str

    @property
    def path(self) -> str:
        """('events', 0, 'contact') → 'events[0].contact'."""
        path = ""
        for part in self.loc:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
        return path


class ScenarioInvalid(Exception):
    """The scenario's events do not validate."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


def scenario_events(first: Any, later: Sequence[Any], *, now: datetime) -> list[EventIn]:
    """The first event, then the later ones in time order, validated like posted events.

    Conveniences for hand-written scenarios: a missing ``id`` is made up, the first event
    happens ``now`` unless it says when, and later events without ``contact`` are about the
    first event's contact. Raises ScenarioInvalid with a field path per problem.
    """
    contact = first.get("contact") if isinstance(first, dict) else None
    raws = [_defaults(first, key="simulated-0", occurred_at=now.isoformat())]
    raws += [_defaults(e, key=f"simulated-{i}", contact=contact) for i, e in enumerate(later, 1)]
    locs: list[Loc] = [("event",), *(("events", i) for i in range(len(later)))]
    parsed, problems = [], []
    for loc, raw in zip(locs, raws, strict=True):
        try:
            parsed.append(_parse_one(raw))
        except ValidationError as exc:
            problems += [Problem((*loc, *e["loc"]), e["msg"]) for e in exc.errors()]
    if not problems:
        start = parsed[0].occurred_at
        problems = [
            Problem((*loc, "occurred_at"), "must not be before the first event")
            for loc, e in zip(locs[1:], parsed[1:], strict=True)
            if e.occurred_at < start
        ]
    if problems:
        raise ScenarioInvalid(problems)
    return [parsed[0], *sorted(parsed[1:], key=lambda e: e.occurred_at)]


def _defaults(raw: Any, *, key: str, occurred_at: str | None = None, contact: Any = None) -> Any:
    if not isinstance(raw, dict):
        return raw
    filled = {"id": key, **raw}
    if occurred_at is not None:
        filled.setdefault("occurred_at", occurred_at)
    if contact is not None:
        filled.setdefault("contact", contact)
    return filled


def _parse_one(raw: Any) -> EventIn:
    if isinstance(raw, dict) and "events" not in raw:
        return parse_events(raw)[0]
    return EventIn.model_validate(raw)  # raises: not one event


def load_yaml(
    text: str, *, policies: Policies, channels: Collection[str], filename: str = "playbook.yaml"
) -> LoadResult:
    """One playbook's YAML text, acting under the given policies."""
    return _with(load_text(text, filename=filename, channels=channels), policies, [])


def _with(
    loaded: tuple[LoadedPlaybook | None, list[PlaybookError]],
    policies: Policies,
    errors: list[PlaybookError],
) -> LoadResult:
    playbook, load_errors = loaded
    found = {playbook.id: playbook} if playbook is not None else {}
    return LoadResult(playbooks=found, policies=policies, errors=errors + load_errors)
