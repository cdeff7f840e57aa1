"""``smr import FILE``: customers and their history from a CSV or JSON Lines file, with a
progress line, a summary, and each bad line by its number (see ``smr.services.imports``)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from smr.config import Settings
from smr.importing import format_of, read
from smr.runtime import build_runtime
from smr.services.imports import Imported, import_lines


async def run(settings: Settings, file: Path, *, chunk: int) -> int:
    """Import ``file``; the exit code: 0, or 1 when a line was refused (the others went in)."""
    runtime = build_runtime(settings)
    started = time.perf_counter()

    def progress(done: Imported) -> None:
        rate = done.lines / max(time.perf_counter() - started, 1e-9)
        print(f"\r{done.lines:,} lines, {rate:,.0f} lines/s", end="", file=sys.stderr, flush=True)

    try:
        # A byte that is not UTF-8 refuses its own line, not the file (surrogateescape).
        with file.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as lines:
            done = await import_lines(
                runtime.sessions,
                read(lines, format=format_of(file.name)),
                catalog=runtime.catalog,
                now=runtime.clock,
                merge_by=settings.merge_by,
                chunk=chunk,
                progress=progress,
            )
    finally:
        await runtime.aclose()
    print(file=sys.stderr)
    for error in done.errors:
        print(error.format(file.name), file=sys.stderr)
    seconds = time.perf_counter() - started
    print(summary(done, seconds=seconds))
    return 1 if done.errors else 0


def summary(done: Imported, *, seconds: float) -> str:
    good = done.lines - len(done.errors)
    return (
        f"{good:,} of {done.lines:,} lines imported in {seconds:.1f} s: "
        f"{done.created:,} new customers, {done.updated:,} updated, {done.unchanged:,} unchanged, "
        f"{done.merged:,} merged; {done.orders:,} historical orders counted "
        f"({done.orders_known:,} already known); {len(done.errors):,} lines refused.\n"
        "No playbook was started and nobody was messaged: an import only records."
    )
