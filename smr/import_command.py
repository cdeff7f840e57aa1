"""``smr import FILE``: customers and their history from a CSV or JSON Lines file, with a
progress line, a summary, and each bad line by its number (see ``smr.services.imports``).

``--jobs N`` imports with N processes, each taking runs of ``--chunk`` lines in turn: the
work of an import is Python's (reading, checking and making each customer), so it goes as
many times faster as there are cores for it, until the database is the limit.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path

from smr.config import Settings
from smr.importing import format_of, records, shared
from smr.runtime import build_runtime
from smr.services.imports import Imported, import_lines

#: Lines imported so far by every process of an import (set in each process it starts).
_lines_done: Synchronized[int] | None = None


async def run(settings: Settings, file: Path, *, chunk: int, jobs: int = 1) -> int:
    """Import ``file``; the exit code: 0, or 1 when a line was refused (the others went in)."""
    started = time.perf_counter()

    def progress(lines: int) -> None:
        rate = lines / max(time.perf_counter() - started, 1e-9)
        print(f"\r{lines:,} lines, {rate:,.0f} lines/s", end="", file=sys.stderr, flush=True)

    done = await import_file(settings, file, chunk=chunk, jobs=jobs, progress=progress)
    print(file=sys.stderr)
    for error in done.errors:
        print(error.format(file.name), file=sys.stderr)
    print(summary(done, seconds=time.perf_counter() - started))
    return 1 if done.errors else 0


async def import_file(
    settings: Settings,
    file: Path,
    *,
    chunk: int,
    jobs: int = 1,
    progress: Callable[[int], None] = lambda lines: None,
) -> Imported:
    """What importing ``file`` with ``jobs`` processes did (one: this process);
    ``progress`` is told the lines done so far, now and then."""
    if jobs == 1:
        return await _share(settings, file, worker=0, workers=1, chunk=chunk, progress=progress)
    context = multiprocessing.get_context("spawn")
    lines_done = context.Value("q", 0)
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(
        jobs, mp_context=context, initializer=_remember, initargs=(lines_done,)
    ) as pool:
        shares = [
            loop.run_in_executor(pool, _share_in_process, settings, file, worker, jobs, chunk)
            for worker in range(jobs)
        ]
        pending = set(shares)
        while pending:
            _, pending = await asyncio.wait(pending, timeout=0.5)
            progress(lines_done.value)
    done = Imported()
    for share in shares:
        done.add(share.result())
    done.errors.sort(key=lambda error: error.number)
    return done


def _remember(lines_done: Synchronized[int]) -> None:
    global _lines_done
    _lines_done = lines_done


def _share_in_process(
    settings: Settings, file: Path, worker: int, workers: int, chunk: int
) -> Imported:
    last = 0

    def progress(lines: int) -> None:
        nonlocal last
        if _lines_done is not None:
            with _lines_done.get_lock():
                _lines_done.value += lines - last
        last = lines

    share = _share(settings, file, worker=worker, workers=workers, chunk=chunk, progress=progress)
    return asyncio.run(share)


async def _share(
    settings: Settings,
    file: Path,
    *,
    worker: int,
    workers: int,
    chunk: int,
    progress: Callable[[int], None],
) -> Imported:
    """Import the ``worker``-th share of ``file``'s lines."""
    runtime = build_runtime(settings)
    # The runtime's objects (playbooks, schemas, mappings) live as long as the import: the
    # collector need not scan them again for every chunk of customers made and dropped.
    gc.freeze()
    try:
        # A byte that is not UTF-8 refuses its own line, not the file (surrogateescape).
        with file.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as lines:
            found = records(lines, format=format_of(file.name))
            return await import_lines(
                runtime.sessions,
                shared(found, worker=worker, workers=workers, chunk=chunk),
                catalog=runtime.catalog,
                now=runtime.clock,
                merge_by=settings.merge_by,
                chunk=chunk,
                progress=lambda done: progress(done.lines),
            )
    finally:
        gc.unfreeze()
        await runtime.aclose()


def summary(done: Imported, *, seconds: float) -> str:
    good = done.lines - len(done.errors)
    return (
        f"{good:,} of {done.lines:,} lines imported in {seconds:.1f} s: "
        f"{done.created:,} new customers, {done.updated:,} updated, {done.unchanged:,} unchanged, "
        f"{done.merged:,} merged; {done.orders:,} historical orders counted "
        f"({done.orders_known:,} already known); {len(done.errors):,} lines refused.\n"
        "No playbook was started and nobody was messaged: an import only records."
    )
