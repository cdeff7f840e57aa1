"""Running playbook test files on the simulator: each case on its own scratch database, with
the folder's playbooks, segments and policies as the service would load them."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from pydantic import ValidationError

from smr.config import Settings
from smr.importing import ImportedContact
from smr.playbook_tests.checks import failure
from smr.playbook_tests.schema import Case, CaseEvent, PlaybookTests, offset
from smr.playbooks.errors import (
    Loc,
    PlaybookError,
    find_node,
    validation_errors,
)
from smr.playbooks.loader import parse_mapping, read_file, yaml_files
from smr.services.catalog import Catalog
from smr.simulate import ScenarioInvalid, scenario_events, simulate
from smr.subjects import IDENTITY_KINDS

#: Where a playbooks folder keeps its tests.
FOLDER = "tests"


@dataclass(frozen=True)
class Failure:
    """An expectation a case did not meet."""

    file: str
    line: int
    case: str
    message: str

    def format(self) -> str:
        return f"{self.file}:{self.line}: {self.case}: {self.message}"


@dataclass
class Outcome:
    """What running test files found."""

    cases: int = 0
    failures: list[Failure] = field(default_factory=list)
    #: Test files that do not read as tests.
    errors: list[PlaybookError] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures and not self.errors


def case_files(playbooks_dir: Path) -> list[Path]:
    """The test files of a playbooks folder, in name order."""
    return yaml_files(playbooks_dir / FOLDER)


async def run_files(
    files: list[Path], *, playbooks_dir: Path, channels: Collection[str], settings: Settings
) -> Outcome:
    """Run every case of ``files`` against the playbooks of ``playbooks_dir``."""
    outcome = Outcome()
    for file in files:
        loaded = _load(file)
        if isinstance(loaded, list):
            outcome.errors += loaded
            continue
        spec, root = loaded
        for index, case in enumerate(spec.cases):
            where = _Where(str(file), root, index, case.name)
            customer = case.contact or spec.contact
            assert customer is not None  # validated
            catalog = Catalog(playbooks_dir, channels)  # each simulation its own
            catalog.reload()
            outcome.failures += await _run_case(case, customer, catalog, settings, where)
            outcome.cases += 1
    return outcome


def _load(file: Path) -> tuple[PlaybookTests, yaml.Node] | list[PlaybookError]:
    text, errors = read_file(file)
    if text is None:
        return errors
    name = str(file)
    root, data, errors = parse_mapping(text, filename=name)
    if root is None:
        return errors
    try:
        return PlaybookTests.model_validate(data), root
    except ValidationError as exc:
        found = validation_errors(exc, root=root, file=name, model=PlaybookTests)
        return sorted(found, key=lambda e: (e.line, e.column))


@dataclass(frozen=True)
class _Where:
    file: str
    root: yaml.Node
    case: int
    name: str

    def failure(self, loc: Loc, message: str) -> Failure:
        node = find_node(self.root, ("cases", self.case, *loc))
        return Failure(self.file, node.start_mark.line + 1, self.name, message)


async def _run_case(
    case: Case, customer: ImportedContact, catalog: Catalog, settings: Settings, where: _Where
) -> list[Failure]:
    tz = catalog.policies.tz
    start = datetime.fromisoformat(case.start).replace(tzinfo=tz)
    ordered = sorted(enumerate(case.events), key=lambda pair: _when(pair[1], start, tz))
    raws = [_raw(event, customer, start, tz) for _, event in ordered]
    try:
        events = scenario_events(raws[0], raws[1:], now=start)
    except ScenarioInvalid as exc:
        return [_problem(where, ordered, p.loc, p.message) for p in exc.problems]
    simulation = await simulate(
        catalog, events, horizon=case.horizon, settings=settings, known=customer
    )
    failures = [where.failure(("events",), note) for note in simulation.notes]
    for index, expectation in enumerate(case.expect):
        if (why := failure(expectation, simulation, start=start)) is not None:
            failures.append(where.failure(("expect", index), why))
    return failures


def _when(event: CaseEvent, start: datetime, tz: ZoneInfo) -> datetime:
    duration, time_of_day, _ = offset(event.at)
    if time_of_day is None:
        return start + duration
    day = (start + duration).astimezone(tz).date()
    return datetime.combine(day, time(*time_of_day), tzinfo=tz)


def _raw(
    event: CaseEvent, customer: ImportedContact, start: datetime, tz: ZoneInfo
) -> dict[str, Any]:
    """The event as posted: at its time, about the case's customer unless it names one."""
    who = {k: v for k in IDENTITY_KINDS if (v := getattr(customer, k, None))}
    return {
        "type": event.type,
        "occurred_at": _when(event, start, tz).isoformat(),
        "data": event.data,
        "contact": event.contact if event.contact is not None else who,
    }


def _problem(
    where: _Where, ordered: list[tuple[int, CaseEvent]], loc: Loc, message: str
) -> Failure:
    """A problem ``scenario_events`` found (at ``event`` or ``events[i]`` of the time-ordered
    events), at its event in the file."""
    position = 0 if loc[0] == "event" else int(loc[1]) + 1
    rest = loc[1:] if loc[0] == "event" else loc[2:]
    original = ordered[position][0]
    path = ".".join(str(part) for part in rest)
    return where.failure(("events", original), f"{path}: {message}" if path else message)
