"""CPU and memory of processes, read from Linux's ``/proc`` (absent elsewhere: None)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int | str) -> tuple[str, list[str]] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    head, _, tail = raw.rpartition(")")
    return head.partition("(")[2], tail.split()


def process_cpu_seconds(pid: int) -> float | None:
    stat = _stat_fields(pid)
    if stat is None:
        return None
    fields = stat[1]  # fields[0] is field 3 (state); utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _postgres_processes() -> Iterator[tuple[Path, list[str]]] | None:
    """Each process named ``postgres`` on this machine: its /proc entry and its stat fields;
    None without /proc."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    return (
        (entry, stat[1])
        for entry in proc.iterdir()
        if entry.name.isdigit()
        and (stat := _stat_fields(entry.name)) is not None
        and stat[0] == "postgres"
    )


def postgres_cpu_seconds() -> float | None:
    """CPU time of every process named ``postgres`` on this machine, with their reaped children.

    Backends that exited are counted through the postmaster's children times. Every database
    on the server is included, not just the bench's.
    """
    processes = _postgres_processes()
    if processes is None:
        return None
    # utime stime cutime cstime
    return sum(sum(int(v) for v in fields[11:15]) / _TICKS for _, fields in processes)


def postgres_backends_cpu_seconds(database: str) -> float | None:
    """CPU time of the live backends connected to ``database`` (their process titles name it:
    ``postgres: 15/main: user database host(port) state``), without the rest of the server
    (other databases, background writers). A backend that exits takes its time with it, so
    measure across long-lived connections (pools)."""
    processes = _postgres_processes()
    if processes is None:
        return None
    total = 0.0
    for entry, fields in processes:
        try:
            title = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if f" {database} " in title:
            total += sum(int(v) for v in fields[11:13]) / _TICKS  # utime stime
    return total


def machine_busy_seconds() -> float | None:
    """CPU time all cores spent busy since boot (``/proc/stat``)."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    values = [int(v) for v in first[1:9]]  # user nice system idle iowait irq softirq steal
    return (sum(values) - values[3] - values[4]) / _TICKS


class CpuMeter:
    """Cores busy over an interval: one share per named reading of CPU seconds (this process,
    a server, every ``postgres`` process, …) and ``other``, the rest of the machine meanwhile
    (other programs, the kernel's share). Readings named in ``within`` are part of another
    (a database's backends, within every ``postgres`` process): shown, not added up."""

    def __init__(
        self,
        readings: dict[str, Callable[[], float | None]],
        *,
        within: frozenset[str] = frozenset(),
    ) -> None:
        self._readings = readings
        self._within = within
        self._before: dict[str, float | None] = {}
        self._machine: float | None = None
        self._started = 0.0

    def start(self) -> None:
        self._started = time.perf_counter()
        self._before = {name: read() for name, read in self._readings.items()}
        self._machine = machine_busy_seconds()

    def stop(self, seconds: float | None = None) -> dict[str, float | None]:
        """Shares over ``seconds`` (default: since ``start``)."""
        span = time.perf_counter() - self._started if seconds is None else seconds

        def share(before: float | None, after: float | None) -> float | None:
            if before is None or after is None or span <= 0:
                return None
            return round((after - before) / span, 3)

        used = {name: share(self._before[name], read()) for name, read in self._readings.items()}
        machine = share(self._machine, machine_busy_seconds())
        counted = {name: v for name, v in used.items() if name not in self._within}
        known = [v for v in counted.values() if v is not None]
        used["other"] = (
            None
            if machine is None or len(known) < len(counted)
            else round(max(0.0, machine - sum(known)), 3)
        )
        return used


def rss_mib(pid: int | str = "self") -> float | None:
    """Resident set size (VmRSS) of a process in MiB; None when it cannot be read."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


@dataclass
class RssSampler:
    """Samples the RSS of named processes every ``interval`` seconds on a thread (the event
    loop may be busy): per name, (seconds since start, MiB) pairs."""

    pids: dict[str, int | str]
    interval: float = 2.0
    samples: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _started: float = 0.0

    def start(self) -> None:
        self._started = time.perf_counter()
        self.samples = {name: [] for name in self.pids}
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
        at = round(time.perf_counter() - self._started, 2)
        for name, pid in self.pids.items():
            value = rss_mib(pid)
            if value is not None:
                self.samples[name].append((at, value))

    def values(self, name: str) -> list[float]:
        """The MiB sampled of the process ``name``, in order."""
        return [mib for _, mib in self.samples.get(name, [])]


#: The bench database's own backends in a ``server_meter`` (counted within ``postgres``).
DB_BACKENDS = "pg backends"


def server_meter(
    processes: dict[str, Callable[[], float | None]], database: str, *, this: str
) -> CpuMeter:
    """A meter of ``processes`` (a name and a reading of CPU seconds each), every ``postgres``
    process and within them ``database``'s backends, and this process as ``this``."""
    return CpuMeter(
        {
            **processes,
            "postgres": postgres_cpu_seconds,
            DB_BACKENDS: lambda: postgres_backends_cpu_seconds(database),
            this: time.process_time,
        },
        within=frozenset({DB_BACKENDS}),
    )
