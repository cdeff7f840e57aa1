"""Paths, the error that stops a run, logging, result files and Ctrl-C handling."""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]

T = TypeVar("T")
BENCH_DIR = Path(__file__).resolve().parent.parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
#: Cores busy with other work above which a timed figure is less reliable.
BUSY_OTHER_CORES = 0.25


class BenchError(Exception):
    """The run cannot produce a measurement (exit 1)."""


async def best_of(repeat: int, work: Callable[[], Awaitable[T]]) -> tuple[float, T]:
    """The shortest of ``repeat`` (at least one) timings of ``work()`` in seconds, and its
    last answer."""
    best = float("inf")
    for _ in range(max(repeat, 1)):
        started = time.perf_counter()
        answer = await work()
        best = min(best, time.perf_counter() - started)
    return best, answer


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def fmt_cpu(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def busy_notes(timed: Iterable[tuple[str, Mapping[str, float | None] | None]]) -> list[str]:
    """For each timed part (a name, the cores busy meanwhile with ``other``, the rest of the
    machine), a note when other work made its figure less reliable."""
    notes = []
    for name, cpu in timed:
        other = None if cpu is None else cpu.get("other")
        if other is not None and other > BUSY_OTHER_CORES:
            notes.append(
                f"{name}: {other:.2f} cores were busy with other work on the machine while it "
                "was timed; the figure is less reliable"
            )
    return notes


def write_results(path: Path, report: dict[str, Any]) -> None:
    """Write ``report`` to ``path`` (git-ignored) and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    print(f"results written to {path.relative_to(ROOT)}")


def print_json_line(report: dict[str, Any]) -> None:
    """The report as one JSON line: the last line of stdout, for scripts."""
    print(json.dumps(report, ensure_ascii=False, separators=(",", ":")), flush=True)


def finish(path: Path, report: dict[str, Any], failures: list[str], *, label: str) -> int:
    """Write ``report`` to ``path``, log each failure (``label: …``), print the report as the
    last line of stdout; the exit code (1 when something failed)."""
    write_results(path, report)
    for failure in failures:
        log(f"{label}: {failure}")
    print_json_line(report)
    return 1 if failures else 0


def package_versions(*names: str) -> dict[str, str]:
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def guarded_main(run: Callable[[T], int], options: T, *, interrupted: str) -> int:
    """Run a benchmark with Ctrl-C and SIGTERM handled alike (also when started in the
    background, where SIGINT may arrive ignored): ``run`` cleans up on KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    try:
        return run(options)
    except KeyboardInterrupt:
        log(f"interrupted; {interrupted}")
        return 130
    except BenchError as exc:
        log(f"error: {exc}")
        return 1
    except (OSError, asyncpg.PostgresError) as exc:
        log(f"error: {type(exc).__name__}: {exc}")
        return 1


def _terminate_as_interrupt(_signum: int, _frame: FrameType | None) -> None:
    # Handled like Ctrl-C: asyncio.run cancels the load cleanly, then everything is cleaned up.
    signal.raise_signal(signal.SIGINT)
