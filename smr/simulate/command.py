"""``smr simulate``: read the playbooks and the scenario's files, simulate, print the table."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer

from smr.config import Settings
from smr.playbooks import load_path
from smr.services.catalog import Catalog
from smr.simulate.engine import simulate
from smr.simulate.scenario import ScenarioInvalid, scenario_events
from smr.simulate.table import render


class _BadInput(Exception):
    """A scenario file that cannot be read or does not validate (message ready to print)."""


def run(
    file: Path,
    *,
    event: str,
    events: Path | None,
    days: int,
    settings: Settings,
    channels: Collection[str],
) -> int:
    """Simulate and print; returns the exit code (1: the playbooks do not load, 2: bad events)."""
    loaded = load_path(file, channels=channels, policies_dir=settings.playbooks_dir)
    for error in loaded.errors:
        typer.echo(error.format(), err=True)
    if any(e.severity == "error" for e in loaded.errors):
        return 1
    if not loaded.playbooks:
        typer.echo(f"{file}: no playbook to simulate", err=True)
        return 1
    try:
        first, later = _read_event(event), _read_lines(events) if events else []
        scenario = scenario_events(first, later, now=datetime.now(UTC))
    except _BadInput as exc:
        typer.echo(str(exc), err=True)
        return 2
    except ScenarioInvalid as exc:
        for problem in exc.problems:
            typer.echo(f"{problem.path}: {problem.message}", err=True)
        return 2
    catalog = Catalog.of(loaded, channels=channels)
    result = asyncio.run(
        simulate(catalog, scenario, horizon=timedelta(days=days), settings=settings)
    )
    typer.echo(render(result))
    return 0


def _read_event(value: str) -> Any:
    """The event as JSON text, or the path of a file holding it."""
    if value.lstrip().startswith("{"):
        return _json(value, where="--event")
    return _json(_read(Path(value)), where=value)


def _read_lines(path: Path) -> list[Any]:
    """One JSON event per line (blank lines and lines starting with # are skipped)."""
    lines = enumerate(_read(path).splitlines(), 1)
    return [
        _json(line, where=f"{path}:{n}")
        for n, line in lines
        if line.strip() and not line.lstrip().startswith("#")
    ]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _BadInput(f"{path}: cannot read file: {exc}") from exc


def _json(text: str, *, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _BadInput(f"{where}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}") from exc
