"""What the phases of ``bench/scale.py`` share: options, percentiles, memory and CPU readings."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bench.harness.procfs import (
    CpuMeter,
    RssSampler,
    postgres_cpu_seconds,
    process_cpu_seconds,
)
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


def peak_rss_mib(pid: int | str = "self") -> float | None:
    """The highest resident set size the process ever had (VmHWM), in MiB."""
    kib = _status_kib(pid, "VmHWM")
    return None if kib is None else round(kib / 1024, 1)


def rss_sampler(pid: int | str = "self", *, interval: float) -> RssSampler:
    """The harness's sampler of one process's RSS, under the name ``SAMPLED``."""
    return RssSampler({SAMPLED: pid}, interval=interval)


SAMPLED = "process"


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
