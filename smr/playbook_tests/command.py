"""``smr playbooks test [PATH]``: the playbooks folder's tests (or one test file), run on the
simulator, each failure printed where the file says what was expected."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import typer

from smr.config import Settings
from smr.playbook_tests.runner import FOLDER, case_files, run_files
from smr.services.catalog import Catalog


async def run(path: Path | None, *, settings: Settings, channels: Collection[str]) -> int:
    """The exit code: 0 when every case passes, 1 otherwise."""
    target = path or settings.playbooks_dir
    if target.is_file():  # one test file, of the folder it is kept in
        files, playbooks_dir = [target], target.parent.parent
    else:
        files, playbooks_dir = case_files(target), target
    catalog = Catalog(playbooks_dir, channels)
    catalog.reload()
    broken = [e for e in catalog.errors if e.severity == "error"]
    for error in broken:
        typer.echo(error.format(), err=True)
    if broken:
        typer.echo(f"the playbooks of {playbooks_dir} do not load: no test run", err=True)
        return 1
    if not files:
        typer.echo(f"no test files in {playbooks_dir / FOLDER}", err=True)
        return 1
    outcome = await run_files(
        files, playbooks_dir=playbooks_dir, channels=channels, settings=settings
    )
    for error in outcome.errors:
        typer.echo(error.format(), err=True)
    for failed in outcome.failures:
        typer.echo(failed.format(), err=True)
    failed_cases = len({(f.file, f.case) for f in outcome.failures})
    typer.echo(
        f"{outcome.cases} cases in {len(files)} files: {outcome.cases - failed_cases} passed, "
        f"{failed_cases} failed" + (f", {len(outcome.errors)} errors" if outcome.errors else "")
    )
    return 0 if outcome.passed else 1
