"""Phase 3 of ``bench/scale.py``: a cron playbook fanned out to its whole audience.

The playbook (``0 10 * * 5`` in Asia/Shanghai, audience ``tags_any: [会员]``, one marketing send
on the mock channel) fires twice, at two past Fridays: first with a tenth of the audience
seeded, then, a week later, with all of it, so the memory of the two fan-outs can be
compared. Tenth and whole are spread over the same id range, among the contacts outside the
audience.

Each fan-out runs in a fresh interpreter (``python -m bench.scale_fanout``), so its RSS shows
the fan-out alone, not the seeding: it builds the runtime with a clock set a minute before the
slot, starts it (the playbook version is stored), moves the clock just past the slot and calls
``Cron.tick`` until the slot is done, sampling its own RSS every quarter second and after each
tick. The fan-out only starts the runs (due at once); the child then runs its processor's lanes,
as one worker would, until every run has taken its steps, and measures that too (the send step makes
one delivery due per run). It prints its result as JSON on the last line.

    .venv/bin/python -m bench.scale_fanout --url URL --playbooks DIR --slot ISO --data-dir DIR
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg  # type: ignore[import-untyped]

from bench.harness.common import ROOT, BenchError
from bench.harness.procfs import rss_mib
from bench.harness.servers import server_env
from bench.scale_common import (
    SAMPLED,
    Options,
    bench_settings,
    process_meter,
    rss_sampler,
)
from bench.scale_seed import seed_members, vacuum_analyze
from bench.scale_worker import write_playbooks
from smr.db import unit_of_work
from smr.repositories import cron_slots as cron_repo
from smr.runtime import Runtime, build_runtime

FANOUT_PLAYBOOK_ID = "bench-member-day"
FANOUT_PLAYBOOK = f"""\
id: {FANOUT_PLAYBOOK_ID}
name: 每周五会员日（压测）
trigger:
  schedule: "0 10 * * 5"
  audience:
    tags_any: [会员]
steps:
  - send:
      channel: mock
      category: marketing
      text: "{{{{ contact.name }}}}，今天是会员日🎁 全场会员价：{{{{ vars.shop_url }}}}"
"""
SHANGHAI = ZoneInfo("Asia/Shanghai")
TICK_BATCHES = 20  # Cron.tick's default budget
RSS_INTERVAL_S = 0.25
SERIES_POINTS = 40
CHILD_TIMEOUT_S = 3600.0
AUDIENCE_TABLES = ("contacts", "contact_identities")


@dataclass
class Steps:
    """The slot's runs taken through their steps by one worker's processor, after the fan-out."""

    runs: int
    dispatched: int
    seconds: float
    runs_per_s: float
    cpu: dict[str, float | None]


@dataclass
class Fanout:
    """One slot's fan-out, as the child measured it."""

    audience: int
    slot_id: str
    slot_status: str
    slot_runs_started: int
    runs: int
    ticks: int
    seconds: float
    runs_per_s: float
    rss_mib: dict[str, float | None]
    cpu: dict[str, float | None]
    steps: Steps | None = None
    series: list[tuple[int, float]] = field(default_factory=list)
    runs_in_table: int | None = None
    profile: str | None = None


@dataclass
class FanoutResult:
    small: Fanout
    full: Fanout
    seed_seconds: float
    failures: list[str] = field(default_factory=list)

    @property
    def growth_mib(self) -> tuple[float, float]:
        return _growth(self.small), _growth(self.full)


def _growth(f: Fanout) -> float:
    start, peak = f.rss_mib.get("start"), f.rss_mib.get("max")
    return round(peak - start, 1) if start is not None and peak is not None else 0.0


# --------------------------------------------------------------------------------------------
# Parent


def first_slot(now: datetime) -> datetime:
    """The Friday 10:00 in Asia/Shanghai two weeks before this week's or last week's (aware
    UTC): it and the slot a week later are both past, so no seeded run or delivery (due from
    an hour after the seeding on) falls due in the fan-out's clock, and the processor takes only
    the slot's runs."""
    local = now.astimezone(SHANGHAI)
    friday = local.date() - timedelta(days=(local.weekday() - 4) % 7 + 14)
    return datetime(friday.year, friday.month, friday.day, 10, tzinfo=SHANGHAI).astimezone(UTC)


async def measure_fanout(url: str, dsn: str, options: Options, tmp: Path) -> FanoutResult:
    playbooks = tmp / "fanout-playbooks"
    write_playbooks(playbooks, {"member-day.yaml": FANOUT_PLAYBOOK})
    first = first_slot(datetime.now(UTC))
    tenth = range(0, options.audience, 10)
    seeded = await seed_members(dsn, tenth)
    await vacuum_analyze(dsn, AUDIENCE_TABLES)
    small = await _child(url, playbooks, tmp, slot=first, profile=None)
    seeded += await seed_members(dsn, (m for m in range(options.audience) if m % 10))
    await vacuum_analyze(dsn, AUDIENCE_TABLES)
    profile = tmp / "fanout.prof" if options.profile_fanout else None
    full = await _child(url, playbooks, tmp, slot=first + timedelta(days=7), profile=profile)
    result = FanoutResult(small=small, full=full, seed_seconds=round(seeded, 1))
    for fanout, expected in ((small, len(tenth)), (full, options.audience)):
        fanout.audience = expected
        fanout.runs_in_table = await _runs_of_slot(dsn, fanout.slot_id)
        result.failures += _checks(fanout, expected)
    return result


async def _child(
    url: str, playbooks: Path, tmp: Path, *, slot: datetime, profile: Path | None
) -> Fanout:
    command = [
        sys.executable,
        "-m",
        "bench.scale_fanout",
        "--url",
        url,
        "--playbooks",
        str(playbooks),
        "--slot",
        slot.isoformat(),
        "--data-dir",
        str(tmp / "fanout-data"),
    ]
    if profile is not None:
        command += ["--profile", str(profile)]
    env = server_env({})
    process = await asyncio.create_subprocess_exec(
        *command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), CHILD_TIMEOUT_S)
    except TimeoutError as exc:
        process.kill()
        await process.wait()
        raise BenchError(f"fan-out did not finish within {CHILD_TIMEOUT_S:.0f}s") from exc
    lines = out.decode().strip().splitlines()
    if process.returncode != 0 or not lines:
        tail = "\n".join(err.decode(errors="replace").splitlines()[-30:])
        raise BenchError(f"fan-out exited with code {process.returncode}:\n{tail}")
    data = json.loads(lines[-1])
    data["series"] = [tuple(p) for p in data["series"]]
    data["steps"] = Steps(**data["steps"]) if data["steps"] else None
    return Fanout(**data)


async def _runs_of_slot(dsn: str, slot_id: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        query = "SELECT count(*) FROM runs WHERE cron_slot_id = $1"
        return int(await conn.fetchval(query, slot_id))
    finally:
        await conn.close()


def _checks(fanout: Fanout, expected: int) -> list[str]:
    failures = []
    if fanout.slot_status != "done":
        failures.append(f"cron slot {fanout.slot_id} is {fanout.slot_status}, expected done")
    if fanout.runs_in_table != expected or fanout.slot_runs_started != expected:
        failures.append(
            f"cron slot {fanout.slot_id}: {fanout.runs_in_table} runs in the table, "
            f"{fanout.slot_runs_started} counted by the slot, expected {expected}"
        )
    steps = fanout.steps
    if steps is not None and (steps.runs, steps.dispatched) != (expected, expected):
        failures.append(
            f"cron slot {fanout.slot_id}: the processor took {steps.runs} runs through their steps "
            f"and sent {steps.dispatched} deliveries, expected {expected} of each"
        )
    return failures


# --------------------------------------------------------------------------------------------
# Child


class ShiftedClock:
    """The real clock moved by an offset that can be changed: time passes as usual around
    whatever moment the bench sets."""

    def __init__(self, at: datetime) -> None:
        self._offset = timedelta(0)
        self.move_to(at)

    def move_to(self, at: datetime) -> None:
        self._offset = at - datetime.now(UTC)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self._offset


def _downsample(series: list[tuple[int, float]], points: int) -> list[tuple[int, float]]:
    if len(series) <= points:
        return series
    step = (len(series) - 1) / (points - 1)
    return [series[round(i * step)] for i in range(points)]


async def fan_out(url: str, playbooks: Path, data_dir: Path, slot: datetime) -> dict[str, Any]:
    """Fire ``slot`` with the real Cron service and measure it, then the processor taking the
    runs through their steps (the child's work)."""
    settings = bench_settings(url, playbooks_dir=playbooks, data_dir=data_dir)
    clock = ShiftedClock(slot - timedelta(minutes=1))
    runtime = build_runtime(settings, clock=clock)
    try:
        await runtime.start()  # the playbook is known from before the slot
        clock.move_to(slot + timedelta(seconds=1))
        sampler = rss_sampler(interval=RSS_INTERVAL_S)
        cpu = process_meter(os.getpid(), "fanout_process")
        start_rss = rss_mib()
        series: list[tuple[int, float]] = [(0, start_rss or 0.0)]
        runs = ticks = 0
        sampler.start()
        cpu.start()
        started = time.perf_counter()
        while True:
            report = await runtime.cron.tick(max_batches=TICK_BATCHES)
            ticks += 1
            runs += report.runs_started
            series.append((runs, rss_mib() or 0.0))
            if not report.runs_started and not report.slots_recorded:
                break
        seconds = time.perf_counter() - started
        used = cpu.stop()
        steps = await _take_steps(runtime)
        sampler.stop()
        async with unit_of_work(runtime.sessions) as session:
            (slot_row,) = await cron_repo.list_slots(
                session, playbook_id=FANOUT_PLAYBOOK_ID, limit=1
            )
    finally:
        await runtime.aclose()
    values = sampler.values(SAMPLED)
    return asdict(
        Fanout(
            audience=runs,
            slot_id=slot_row.id,
            slot_status=slot_row.status,
            slot_runs_started=slot_row.runs_started,
            runs=runs,
            ticks=ticks,
            seconds=round(seconds, 2),
            runs_per_s=round(runs / seconds, 1) if seconds > 0 else 0.0,
            rss_mib={"start": start_rss, "max": max(values, default=None), "end": rss_mib()},
            cpu=used,
            steps=steps,
            series=_downsample(series, SERIES_POINTS),
        )
    )


async def _take_steps(runtime: Runtime) -> Steps:
    """The processor's lanes, side by side, until no run is due: the fanned-out runs' steps,
    on this one worker."""
    cpu = process_meter(os.getpid(), "worker_process")
    processor = runtime.processor

    async def lane(partitions: frozenset[int] | None) -> tuple[int, int]:
        runs = due = 0
        while (worked := await processor.once(partitions)).runs:
            runs, due = runs + worked.runs, due + worked.dispatched
        return runs, due

    cpu.start()
    started = time.perf_counter()
    lanes = await asyncio.gather(*(lane(partitions) for partitions in processor.lanes))
    seconds = time.perf_counter() - started
    runs, due = sum(r for r, _ in lanes), sum(d for _, d in lanes)
    rate = round(runs / seconds, 1) if seconds > 0 else 0.0
    return Steps(runs, due, round(seconds, 2), rate, cpu.stop())


def _profile_text(profiler: cProfile.Profile, path: Path) -> str:
    profiler.dump_stats(path)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
    return out.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="One cron fan-out, measured (bench/scale.py).")
    parser.add_argument("--url", required=True, help="SQLAlchemy URL of the bench database")
    parser.add_argument("--playbooks", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--slot", required=True, help="the slot to fire (ISO 8601, aware)")
    parser.add_argument("--profile", type=Path, help="write cProfile stats of the fan-out here")
    ns = parser.parse_args(argv)
    slot = datetime.fromisoformat(ns.slot)
    work = fan_out(ns.url, ns.playbooks, ns.data_dir, slot)
    if ns.profile is None:
        result = asyncio.run(work)
    else:
        profiler = cProfile.Profile()
        result = profiler.runcall(asyncio.run, work)
        result["profile"] = _profile_text(profiler, ns.profile)
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
