"""Phase 2 of ``bench/scale.py``: a real ``smr worker`` next to a million future rows.

The worker runs as a subprocess on the bench database (mock channel without latency, a
playbooks folder whose policies have no quiet hours and no caps). After a warm-up batch has
been sent, a feed inserts deliveries due now at ``--due-per-s`` for ``--seconds``; once all are
handled, lateness is read from the table (``sent_at - due_at``). The worker's RSS is sampled
every half second meanwhile.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import asyncpg  # type: ignore[import-untyped]

from adapters import PLAYBOOK_CHANNELS
from bench.harness.common import ROOT, BenchError
from bench.harness.procfs import rss_mib
from bench.harness.servers import server_env, smr_command, terminate
from bench.scale_common import (
    PLAYBOOK_ID,
    SAMPLED,
    Options,
    peak_rss_mib,
    process_meter,
    rss_sampler,
)
from bench.scale_due import DueFeed, due_step
from smr.config import Settings
from smr.playbooks import load_directory

PHASE = 2
WARMUP_PHASE = 20
WARMUP_DELIVERIES = 200
READY_TIMEOUT_S = 90.0
DRAIN_TIMEOUT_S = 120.0
POLL_S = 0.5
LOG_TAIL_LINES = 30

WORKER_PLAYBOOK = f"""\
id: {PLAYBOOK_ID}
name: 会员日提醒（压测）
trigger:
  event: bench.scale
steps:
  - send:
      channel: mock
      category: marketing
      text: "{{{{ contact.name }}}}，今天是会员日，全场会员价：{{{{ vars.shop_url }}}}"
"""
POLICIES = """\
timezone: Asia/Shanghai
vars:
  shop_url: "https://example.com"
"""


def write_playbooks(folder: Path, playbooks: dict[str, str]) -> None:
    """A playbooks folder (policies without quiet hours or caps); raises BenchError if SMR
    would not load every file."""
    folder.mkdir(parents=True)
    (folder / "policies.yaml").write_text(POLICIES, encoding="utf-8")
    for name, text in playbooks.items():
        (folder / name).write_text(text, encoding="utf-8")
    result = load_directory(folder, channels=PLAYBOOK_CHANNELS)
    errors = [e.format() for e in result.errors if e.severity == "error"]
    if errors or len(result.playbooks) != len(playbooks):
        raise BenchError(f"bench playbooks do not load: {errors}")


@dataclass
class WorkerResult:
    seconds: float
    due_per_s: int
    tick_seconds: float
    batch_size: int
    inserted: int
    handled: int
    statuses: dict[str, int]
    drain_seconds: float
    lateness_s: dict[str, float]
    rss_mib: dict[str, float | None]
    cpu: dict[str, float | None]
    feed_max_behind_s: float
    rss_series: list[tuple[float, float]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass
class Worker:
    """``smr worker`` as a subprocess, its output in a log file."""

    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    _log: TextIO | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        self._log = self.log_path.open("w", encoding="utf-8")
        self.process = subprocess.Popen(
            [smr_command(), "worker"],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the bench only; it stops the worker
        )

    def check_alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            code = None if self.process is None else self.process.returncode
            raise BenchError(f"smr worker exited with code {code}; last lines:\n{self.tail()}")

    def stop(self) -> int | None:
        if self.process is not None:
            terminate(self.process, timeout=30)
        if self._log is not None:
            self._log.close()
            self._log = None
        return None if self.process is None else self.process.returncode

    def tail(self) -> str:
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return "(no output)"
        return "\n".join(lines[-LOG_TAIL_LINES:]) or "(no output)"

    def problems(self) -> list[str]:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        return [line[:240] for line in text.splitlines() if " ERROR " in line][:10]


def worker_env(url: str, tmp: Path, playbooks: Path) -> dict[str, str]:
    return server_env(
        {
            "SMR_DATABASE_URL": url,
            "SMR_PLAYBOOKS_DIR": str(playbooks),
            "SMR_DATA_DIR": str(tmp / "worker-data"),
            "SMR_MOCK__LATENCY_MS": "0",
            "SMR_MOCK__FAIL_RATE": "0",
        }
    )


async def _pending(conn: Any, *, since_id: str, step_prefix: str) -> tuple[int, int]:
    """(rows, rows still scheduled or sending) among the deliveries a feed inserted."""
    row = await conn.fetchrow(
        "SELECT count(*) AS total,"
        " count(*) FILTER (WHERE status IN ('scheduled', 'sending')) AS pending"
        " FROM deliveries WHERE id >= $1 AND step LIKE $2",
        since_id,
        step_prefix + "%",
    )
    return int(row["total"]), int(row["pending"])


async def _wait_handled(
    dsn: str, worker: Worker, *, since_id: str, phase: int, expected: int, limit_s: float
) -> float:
    """Poll until every delivery of ``phase`` is handled; the seconds it took."""
    started = time.perf_counter()
    prefix = due_step(phase, 0).rpartition(".")[0] + "."
    conn = await asyncpg.connect(dsn)
    try:
        while True:
            total, pending = await _pending(conn, since_id=since_id, step_prefix=prefix)
            if total >= expected and not pending:
                return time.perf_counter() - started
            worker.check_alive()
            if time.perf_counter() - started > limit_s:
                raise BenchError(
                    f"smr worker left {pending} of {total} deliveries unhandled after "
                    f"{limit_s:.0f}s; last lines:\n{worker.tail()}"
                )
            await asyncio.sleep(POLL_S)
    finally:
        await conn.close()


def _id_floor(prefix: str, when: datetime) -> str:
    """The smallest id SMR's ``new_id`` can make at or after ``when``."""
    return f"{prefix}_{int(when.timestamp() * 1000):012x}"


async def _lateness(
    dsn: str, *, since_id: str, phase: int
) -> tuple[dict[str, float], dict[str, int]]:
    prefix = due_step(phase, 0).rpartition(".")[0] + ".%"
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS n,"
            " percentile_disc(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP"
            "   (ORDER BY extract(epoch FROM sent_at - due_at)) AS q,"
            " max(extract(epoch FROM sent_at - due_at)) AS worst"
            " FROM deliveries WHERE id >= $1 AND step LIKE $2 AND status = 'sent'",
            since_id,
            prefix,
        )
        statuses = {
            str(r["status"]): int(r["n"])
            for r in await conn.fetch(
                "SELECT status, count(*) AS n FROM deliveries"
                " WHERE id >= $1 AND step LIKE $2 GROUP BY status",
                since_id,
                prefix,
            )
        }
    finally:
        await conn.close()
    q = [float(v) for v in row["q"] or (0, 0, 0)]
    lateness = {
        "count": int(row["n"]),
        "p50": round(q[0], 3),
        "p95": round(q[1], 3),
        "p99": round(q[2], 3),
        "max": round(float(row["worst"] or 0), 3),
    }
    return lateness, statuses


async def _feed_and_wait(
    dsn: str, worker: Worker, options: Options, *, phase: int, per_s: int, seconds: float
) -> tuple[DueFeed, str, float]:
    since_id = _id_floor("dl", datetime.now(UTC))
    feed = DueFeed(dsn, per_s=per_s, seconds=seconds, seeded=options.rows, phase=phase)
    feed.start()
    while not feed.finished.is_set():
        await asyncio.sleep(POLL_S)
        worker.check_alive()
    feed.join()
    drained = await _wait_handled(
        dsn,
        worker,
        since_id=since_id,
        phase=phase,
        expected=feed.deliveries_inserted,
        limit_s=DRAIN_TIMEOUT_S if phase != WARMUP_PHASE else READY_TIMEOUT_S,
    )
    return feed, since_id, drained


def _default(name: str) -> Any:
    return Settings.model_fields[name].default


async def measure_worker(url: str, dsn: str, options: Options, tmp: Path) -> WorkerResult:
    playbooks = tmp / "worker-playbooks"
    write_playbooks(playbooks, {"bench-scale.yaml": WORKER_PLAYBOOK})
    worker = Worker(worker_env(url, tmp, playbooks), tmp / "worker.log")
    worker.start()
    try:
        await _feed_and_wait(
            dsn, worker, options, phase=WARMUP_PHASE, per_s=WARMUP_DELIVERIES * 10, seconds=0.1
        )
        rss_idle = rss_mib(worker.pid)
        sampler = rss_sampler(worker.pid, interval=0.5)
        cpu = process_meter(worker.pid, "worker")
        sampler.start()
        cpu.start()
        feed, since_id, drained = await _feed_and_wait(
            dsn, worker, options, phase=PHASE, per_s=options.due_per_s, seconds=options.seconds
        )
        used = cpu.stop()
        sampler.stop()
        peak = peak_rss_mib(worker.pid)
    finally:
        code = worker.stop()
    lateness, statuses = await _lateness(dsn, since_id=since_id, phase=PHASE)
    problems = worker.problems()
    if code not in (0, None):
        problems.append(f"smr worker exited with code {code}")
    values = sampler.values(SAMPLED)
    return WorkerResult(
        seconds=options.seconds,
        due_per_s=options.due_per_s,
        tick_seconds=_default("tick_seconds"),
        batch_size=_default("batch_size"),
        inserted=feed.deliveries_inserted,
        handled=sum(statuses.values()) - statuses.get("scheduled", 0) - statuses.get("sending", 0),
        statuses=statuses,
        drain_seconds=round(drained, 2),
        lateness_s=lateness,
        rss_mib={
            "idle": rss_idle,
            "max_sampled": max(values, default=None),
            "end": values[-1] if values else None,
            "peak_vmhwm": peak,
        },
        cpu=used,
        feed_max_behind_s=round(feed.max_behind_s, 3),
        rss_series=sampler.samples[SAMPLED],
        problems=problems,
    )
