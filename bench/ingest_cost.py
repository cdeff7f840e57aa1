"""Instructions the application runs per ingested event, counted by callgrind.

Request rates on a shared 2-core machine move by a tenth from one run to the next; instruction
counts repeat to about 0.1 %. This command runs SMR's API app (the one ``bench/ingest.py``
serves) and, as the baseline in the same run, the bare endpoint (``bench/bare_app.py``), each
in its own process under ``valgrind --tool=callgrind``, and sends each the same single-event
requests (or batches: ``--batch 100``) as ASGI calls straight into the app: no HTTP server, no
client, only what the application runs (framework, driver, event loop). Instructions are
counted over the measured requests only, after a warm-up, and printed per request (and per
event, for batches) for both, with their ratio.

The database is PostgreSQL, recreated as ``smr_cost`` (``--pg`` / ``SMR_BENCH_PG`` as in
``bench/ingest.py``) with the same 20 playbooks and the same customers. Needs valgrind.

    .venv/bin/python bench/ingest_cost.py [--requests 300] [--warmup 500] [--concurrency 4]
    .venv/bin/python bench/ingest_cost.py --batch 100 --requests 40 --warmup 20

Exit code 0 when both were measured; 1 otherwise. Writes ``bench/results/ingest_cost.json``
and prints it as JSON on the last line of stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness.common import BENCH_DIR, BenchError, log, write_results
from bench.harness.db import database_dsn, drop_database, recreate_database
from bench.harness.workload import EventFactory
from bench.ingest import prepare_servers

RESULTS_FILE = BENCH_DIR / "results" / "ingest_cost.json"
START_TIMEOUT_S = 600.0
Asgi = Callable[..., Awaitable[None]]


@dataclass(frozen=True)
class Options:
    requests: int
    warmup: int
    concurrency: int
    contacts: int
    batch: int
    pg: str
    database: str
    seed: int


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        description="Instructions per single-event request: SMR's app and the bare endpoint.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--requests", type=int, default=300, help="requests counted")
    parser.add_argument("--warmup", type=int, default=500, help="requests before counting")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    parser.add_argument("--contacts", type=int, default=5000, help="distinct customers")
    parser.add_argument("--batch", type=int, default=1, help="events per request (1: single)")
    parser.add_argument(
        "--pg",
        default=os.environ.get("SMR_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="maintenance DSN used to create and drop the database (env SMR_BENCH_PG)",
    )
    parser.add_argument("--database", default="smr_cost", help="database, recreated")
    parser.add_argument("--seed", type=int, default=20261123, help="seed of the generated data")
    ns = parser.parse_args(argv)
    for name in ("requests", "concurrency", "contacts", "batch"):
        if getattr(ns, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if ns.warmup < 0:
        parser.error("--warmup must not be negative")
    if not ns.database.replace("_", "").isalnum():
        parser.error("--database must be letters, digits and underscores")
    return Options(
        ns.requests, ns.warmup, ns.concurrency, ns.contacts, ns.batch, ns.pg, ns.database, ns.seed
    )


# --------------------------------------------------------------------------------------------
# The measured process: one app, driven in-process, waiting for the parent between phases.


async def serve_and_drive(target: str, bodies: list[bytes], signals: Path, *, counted: int) -> None:
    app, path = _app(target)
    token = os.environ.get("SMR_INGEST_TOKENS", "")  # the parent's (the bare endpoint has none)
    headers = [
        (b"authorization", f"Bearer {token}".encode()),
        (b"content-type", b"application/json"),
    ]
    concurrency = int(os.environ["COST_CONCURRENCY"])
    async with app.router.lifespan_context(app):
        warmup, measured = bodies[: len(bodies) - counted], bodies[len(bodies) - counted :]
        await _drive(app, path, headers, warmup, concurrency)
        await _signal_and_wait(signals, "warm")
        await _drive(app, path, headers, measured, concurrency)
        await _signal_and_wait(signals, "done")


def _app(target: str) -> tuple[Any, str]:
    if target == "bare":
        from bench.bare_app import app as bare

        return bare, "/events/batch" if int(os.environ["COST_BATCH"]) > 1 else "/events"
    from bench.smr_app import create

    return create(), "/v1/events"


async def _drive(
    app: Asgi, path: str, headers: list[tuple[bytes, bytes]], bodies: list[bytes], lanes: int
) -> None:
    async def lane(chunk: list[bytes]) -> None:
        for body in chunk:
            status = await _post(app, path, headers, body)
            if status != 202:
                raise BenchError(f"POST {path} answered {status}")

    await asyncio.gather(*(lane(bodies[i::lanes]) for i in range(lanes)))


async def _post(app: Asgi, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    pending = [{"type": "http.request", "body": body, "more_body": False}]
    status = 0

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop()
        await asyncio.Event().wait()  # no disconnect: the app answers first
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _signal_and_wait(signals: Path, reached: str) -> None:
    """Tell the parent this phase is over; go on when it answers on stdin."""
    (signals / reached).touch()
    await asyncio.to_thread(sys.stdin.readline)


# --------------------------------------------------------------------------------------------
# The parent: database, processes under callgrind, instrumentation switched on around the
# measured requests.


@dataclass(frozen=True)
class Count:
    target: str
    instructions: int
    requests: int

    @property
    def per_request(self) -> float:
        return self.instructions / self.requests


def measure(target: str, env: dict[str, str], options: Options, tmp: Path) -> Count:
    signals = tmp / f"signals-{target}"
    signals.mkdir()
    out = tmp / f"callgrind-{target}.out"
    command = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",  # instrumented only between "warm" and "done"
        f"--callgrind-out-file={out}",
        sys.executable,
        __file__,
        "--child",
        target,
        str(signals),
    ]
    child_env = {
        **env,
        "COST_REQUESTS": str(options.requests),
        "COST_WARMUP": str(options.warmup),
        "COST_CONCURRENCY": str(options.concurrency),
        "COST_CONTACTS": str(options.contacts),
        "COST_BATCH": str(options.batch),
        "COST_SEED": str(options.seed),
    }
    log(f"{target}: starting under callgrind")
    with (tmp / f"{target}.log").open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=BENCH_DIR,
            env=child_env,
            stdin=subprocess.PIPE,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_for(signals / "warm", process, tmp / f"{target}.log")
            _callgrind_control(process.pid, "--instr=on")
            _callgrind_control(process.pid, "--zero")
            log(f"{target}: counting {options.requests} requests")
            _answer(process)
            _wait_for(signals / "done", process, tmp / f"{target}.log")
            _callgrind_control(process.pid, "--dump=measured")
            _answer(process)
            process.wait(timeout=START_TIMEOUT_S)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    return Count(target, _measured_instructions(tmp, out.name), options.requests)


def _wait_for(signal: Path, process: subprocess.Popen[bytes], output: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not signal.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            tail = output.read_text(errors="replace").splitlines()[-30:]
            raise BenchError(f"{output.stem} stopped before {signal.name}:\n" + "\n".join(tail))
        time.sleep(0.2)


def _answer(process: subprocess.Popen[bytes]) -> None:
    assert process.stdin is not None
    process.stdin.write(b"go\n")
    process.stdin.flush()


def _callgrind_control(pid: int, option: str) -> None:
    subprocess.run(
        ["callgrind_control", option, str(pid)], check=True, capture_output=True, timeout=60
    )


def _measured_instructions(tmp: Path, prefix: str) -> int:
    """The event total of the dump taken at "done" (callgrind numbers each dump's file)."""
    for dump in sorted(tmp.glob(f"{prefix}*")):
        text = dump.read_text(errors="replace")
        if "Trigger: dump measured" in text:
            for line in text.splitlines():
                if line.startswith("summary:"):
                    return int(line.split()[1])
    raise BenchError("callgrind wrote no dump of the measured requests")


def run(options: Options) -> int:
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise BenchError("valgrind (with callgrind_control) is not installed")
    dsn = database_dsn(options.pg, options.database)
    with tempfile.TemporaryDirectory(prefix="smr-cost-") as name:
        tmp = Path(name)
        log(f"database {options.database}: recreating")
        version = asyncio.run(recreate_database(options.pg, options.database))
        try:
            servers = prepare_servers(tmp, dsn)  # also migrates SMR's schema
            counts = {
                target: measure(target, server.env, options, tmp)
                for target, server in (("bare", servers.bare), ("smr", servers.smr))
            }
        finally:
            asyncio.run(drop_database(options.pg, options.database))
    report = _report(counts, options, version)
    _print(report)
    write_results(RESULTS_FILE, report)
    print(json.dumps(report, ensure_ascii=False, separators=(",", ":")))
    return 0


def _report(counts: dict[str, Count], options: Options, version: str) -> dict[str, Any]:
    bare, smr = counts["bare"], counts["smr"]
    return {
        "benchmark": "ingest_cost",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "summary": {
            "bare_instructions_per_request": round(bare.per_request),
            "smr_instructions_per_request": round(smr.per_request),
            "bare_instructions_per_event": round(bare.per_request / options.batch),
            "smr_instructions_per_event": round(smr.per_request / options.batch),
            "smr_over_bare": round(smr.per_request / bare.per_request, 2),
        },
        "setup": {
            "requests": options.requests,
            "warmup": options.warmup,
            "concurrency": options.concurrency,
            "contacts": options.contacts,
            "events_per_request": options.batch,
            "python": platform.python_version(),
            "postgres_version": version,
        },
    }


def _print(report: dict[str, Any]) -> None:
    summary, setup = report["summary"], report["setup"]
    print()
    size = setup["events_per_request"]
    what = "single-event request" if size == 1 else f"request of {size} events"
    print(
        f"Instructions per {what}, counted by callgrind over {setup['requests']} "
        f"requests after {setup['warmup']}, {setup['concurrency']} in flight, in-process ASGI "
        f"calls (no HTTP server, no client). PostgreSQL {setup['postgres_version']}."
    )
    for name, key in (("bare endpoint", "bare"), ("SMR", "smr")):
        per_request = summary[f"{key}_instructions_per_request"] / 1e6
        per_event = summary[f"{key}_instructions_per_event"] / 1e6
        print(f"  {name:13}  {per_request:8.3f} M per request  {per_event:8.3f} M per event")
    print(f"  SMR / bare     {summary['smr_over_bare']:8.2f} x")


def child(target: str, signals: Path) -> int:
    requests = int(os.environ["COST_REQUESTS"])
    factory = EventFactory(
        run=f"cost-{target}",
        contacts=int(os.environ["COST_CONTACTS"]),
        seed=int(os.environ["COST_SEED"]),
    )
    count, size = int(os.environ["COST_WARMUP"]) + requests, int(os.environ["COST_BATCH"])
    bodies = factory.singles(count) if size == 1 else factory.batches(count, size)
    asyncio.run(serve_and_drive(target, bodies, signals, counted=requests))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--child"]:
        return child(args[1], Path(args[2]))
    options = parse_args(args)
    try:
        return run(options)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
