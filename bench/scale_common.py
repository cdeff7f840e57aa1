"""What the phases of ``bench/scale.py`` share: options, percentiles, memory and CPU readings."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bench.harness.procfs import CpuMeter, postgres_cpu_seconds, process_cpu_seconds
from smr.config import MockSettings, Settings

MIB = 1024 * 1024
PLAYBOOK_ID = "bench-scale"
PLAYBOOK_VERSION = "benchscale000000"


@dataclass(frozen=True)
class Options:
    rows: int
    audience: int
    seconds: float
    due_per_s: int
    claim_interval: float
    pg: str
    database: str
    keep_db: bool
    quick: bool
    phases: tuple[str, ...]
    profile_fanout: bool


# --------------------------------------------------------------------------------------------
# Statistics


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 when there are none)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summarise_ms(seconds: Sequence[float]) -> dict[str, float]:
    """count, p50, p95, p99, max and mean of durations given in seconds, in milliseconds."""
    ordered = sorted(s * 1000 for s in seconds)
    mean = sum(ordered) / len(ordered) if ordered else 0.0
    return {
        "count": len(ordered),
        "p50": round(percentile(ordered, 0.50), 2),
        "p95": round(percentile(ordered, 0.95), 2),
        "p99": round(percentile(ordered, 0.99), 2),
        "max": round(ordered[-1] if ordered else 0.0, 2),
        "mean": round(mean, 2),
    }


# --------------------------------------------------------------------------------------------
# Memory (Linux /proc)


def _status_kib(pid: int | str, key: str) -> int | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None


def rss_mib(pid: int | str = "self") -> float | None:
    """Resident set size (VmRSS) of a process in MiB; None when it cannot be read."""
    kib = _status_kib(pid, "VmRSS")
    return None if kib is None else round(kib / 1024, 1)


def peak_rss_mib(pid: int | str = "self") -> float | None:
    """The highest resident set size the process ever had (VmHWM), in MiB."""
    kib = _status_kib(pid, "VmHWM")
    return None if kib is None else round(kib / 1024, 1)


@dataclass
class RssSampler:
    """Samples a process's RSS every ``interval`` seconds on a thread (the event loop may be
    busy): (seconds since start, MiB) pairs."""

    pid: int | str = "self"
    interval: float = 0.5
    samples: list[tuple[float, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _started: float = 0.0

    def start(self) -> None:
        self._started = time.perf_counter()
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        value = rss_mib(self.pid)
        if value is not None:
            self.samples.append((round(time.perf_counter() - self._started, 2), value))

    @property
    def values(self) -> list[float]:
        return [mib for _, mib in self.samples]


# --------------------------------------------------------------------------------------------
# CPU (Linux /proc)


def process_meter(pid: int, label: str) -> CpuMeter:
    """Cores busy in one process (``pid``, shown as ``label``), every ``postgres`` process and
    the rest of the machine (``other``: other programs, including other people's work)."""
    return CpuMeter({label: lambda: process_cpu_seconds(pid), "postgres": postgres_cpu_seconds})


def bench_settings(url: str, **overrides: Any) -> Settings:
    """The Settings defaults (batch size, lease) on the bench database, the mock without
    latency or failures, no playbook polling; ``overrides`` as Settings fields."""
    return Settings(
        database_url=url,
        admin_tokens=[SecretStr("bench")],
        mock=MockSettings(latency_ms=0, fail_rate=0.0),
        playbooks_poll_seconds=0,
        **overrides,
    )
