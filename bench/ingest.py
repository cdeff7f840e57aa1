"""Ingest throughput of SMR against a bare FastAPI + asyncpg endpoint, on the local PostgreSQL.

One run:

1. creates a fresh database (``smr_bench``) and a temporary playbooks folder with 20 playbooks,
   exactly one of which (``bench-order-paid``) matches the driven ``order.paid`` events;
2. starts SMR (the API without the dispatcher, like ``smr api``) and the bare endpoint
   (``bench/bare_app.py``) as uvicorn subprocesses with the same settings, on free loopback
   ports;
3. drives both from this process with httpx (HTTP/1.1, keep-alive, fixed concurrency), each
   measurement a fixed number of requests after a warm-up:
   bare single events, SMR single events, SMR batches of 100 events;
4. prints the rates, compares them with the targets (SMR single >= 50 % of bare; SMR batch
   >= 10,000 events/s), writes them to ``bench/results/ingest.json`` and prints them as JSON on
   the last line of stdout;
5. stops the servers and drops the database, whatever happened.

The exit code is 0 whether or not the targets are met; 1 when a server fails to start or any
request fails (no answer, or an answer other than 202).

    .venv/bin/python bench/ingest.py [--single 3000] [--batches 200] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import platform
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any, TextIO, TypeVar

import asyncpg  # type: ignore[import-untyped]
import httpx

T = TypeVar("T")
BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_FILE = BENCH_DIR / "results" / "ingest.json"
INGEST_TOKEN = secrets.token_urlsafe(24)
ADMIN_TOKEN = secrets.token_urlsafe(24)
MATCHING_PLAYBOOK = "bench-order-paid"
PLAYBOOK_COUNT = 20
BATCH_SIZE = 100
TARGET_SINGLE_RATIO = 0.5
TARGET_BATCH_EVENTS_PER_S = 10_000.0
MAX_FAILURES = 20  # a measurement stops early after this many failed requests
SHANGHAI = timezone(timedelta(hours=8))
STDERR_TAIL_LINES = 40
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Warning)\b(: |$)")

# --------------------------------------------------------------------------------------------
# Options


@dataclass(frozen=True)
class Options:
    single: int
    batches: int
    concurrency: int
    warmup: int
    batch_warmup: int
    contacts: int
    pg: str
    database: str
    smr_cli: bool
    keep_db: bool
    seed: int


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        description="SMR ingest throughput against a bare FastAPI + asyncpg endpoint.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--single", type=int, default=3000, help="single-event requests timed")
    parser.add_argument("--batches", type=int, default=200, help="batch requests timed")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--warmup", type=int, default=200, help="single requests before timing")
    parser.add_argument("--batch-warmup", type=int, default=10, help="batch requests before timing")
    parser.add_argument(
        "--contacts", type=int, default=5000, help="distinct customers (phones) events come from"
    )
    parser.add_argument(
        "--pg",
        default=os.environ.get("SMR_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="maintenance DSN used to create and drop the bench database (env SMR_BENCH_PG)",
    )
    parser.add_argument("--database", default="smr_bench", help="bench database, recreated")
    parser.add_argument(
        "--smr-cli",
        action="store_true",
        help="run SMR through the real `smr api` command (its uvicorn keeps the access log on, "
        "so the servers are no longer configured alike)",
    )
    parser.add_argument("--keep-db", action="store_true", help="keep the database afterwards")
    parser.add_argument("--seed", type=int, default=20261123, help="seed of the generated data")
    ns = parser.parse_args(argv)
    for name in ("single", "batches", "concurrency", "contacts"):
        if getattr(ns, name) < 1:
            parser.error(f"--{name} must be at least 1")
    for name in ("warmup", "batch_warmup"):
        if getattr(ns, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must not be negative")
    if ns.contacts > 10_000_000:
        parser.error("--contacts must be at most 10000000")
    if not ns.database.replace("_", "").isalnum():
        parser.error("--database must be letters, digits and underscores")
    return Options(
        single=ns.single,
        batches=ns.batches,
        concurrency=ns.concurrency,
        warmup=ns.warmup,
        batch_warmup=ns.batch_warmup,
        contacts=ns.contacts,
        pg=ns.pg,
        database=ns.database,
        smr_cli=ns.smr_cli,
        keep_db=ns.keep_db,
        seed=ns.seed,
    )


class BenchError(Exception):
    """The run cannot produce a measurement (exit 1)."""


# --------------------------------------------------------------------------------------------
# Database


def database_dsn(pg: str, database: str) -> str:
    """``pg`` with its database replaced by ``database``."""
    base, sep, query = pg.partition("?")
    head, slash, _ = base.rpartition("/")
    if not slash or "//" not in head + slash:
        raise BenchError(f"cannot read a database name out of --pg {pg!r}")
    return f"{head}/{database}{sep}{query}"


def sqlalchemy_url(dsn: str) -> str:
    _, _, rest = dsn.partition("://")
    return f"postgresql+asyncpg://{rest}"


async def create_database(pg: str, database: str) -> str:
    """Drop and create ``database``; the server's version."""
    conn = await asyncpg.connect(pg)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{database}"')
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


async def recreate_database(pg: str, database: str) -> str:
    """Drop and create ``database``, make the bare endpoint's table; the server's version."""
    version = await create_database(pg, database)
    conn = await asyncpg.connect(database_dsn(pg, database))
    try:
        await conn.execute(
            """
            CREATE TABLE bare_events (
                id bigserial PRIMARY KEY,
                key text NOT NULL UNIQUE,
                body jsonb NOT NULL,
                received_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
    finally:
        await conn.close()
    return version


async def drop_database(pg: str, database: str) -> None:
    conn = await asyncpg.connect(pg)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await conn.close()


async def stored_counts(dsn: str) -> dict[str, Any]:
    """What the servers wrote: rows per table and runs per playbook."""
    conn = await asyncpg.connect(dsn)
    try:
        counts: dict[str, Any] = {}
        for table in ("bare_events", "events", "contacts", "runs", "deliveries"):
            try:
                counts[table] = int(await conn.fetchval(f"SELECT count(*) FROM {table}"))  # noqa: S608
            except asyncpg.PostgresError as exc:
                counts[table] = f"unavailable: {exc}"
        try:
            rows = await conn.fetch(
                "SELECT playbook_id, count(*) AS n FROM runs GROUP BY playbook_id ORDER BY 1"
            )
            counts["runs_by_playbook"] = {str(r["playbook_id"]): int(r["n"]) for r in rows}
        except asyncpg.PostgresError as exc:
            counts["runs_by_playbook"] = f"unavailable: {exc}"
        return counts
    finally:
        await conn.close()


# --------------------------------------------------------------------------------------------
# Playbooks

_MATCHING = f"""\
# The one playbook the driven order.paid events trigger.
id: {MATCHING_PLAYBOOK}
name: 下单感谢（基准）
mode: parallel
trigger:
  event: order.paid
steps:
  - tag: {{add: [已购]}}
  - send:
      channel: mock
      category: service
      text: "{{{{ contact.name or '亲' }}}}，感谢下单！订单 {{{{ event.data.order_id }}}}"
"""

# order.paid playbooks whose condition is false for every driven event (they are evaluated).
_FALSE_CONDITIONS = (
    "event.data.total > 1000000",
    "event.data.currency == 'USD'",
    "event.data.currency == 'JPY'",
    "event.data.total < 0",
    "contact.stats.orders > 1000000",
    "event.data.items | length > 50",
)

# Playbooks on events the bench never sends.
_OTHER_EVENTS = (
    ("order.refunded", None),
    ("order.shipped", None),
    ("order.created", None),
    ("cart.abandoned", None),
    ("contact.added", None),
    ("contact.updated", None),
    ("chat.message", ["价格", "多少钱"]),
    ("chat.message", ["退货", "退款"]),
    ("coupon.claimed", None),
    ("member.level_changed", None),
    ("review.posted", None),
    ("ticket.opened", None),
    ("form.submitted", None),
)


def _other_playbook(index: int, event: str, condition: str | None, keywords: Any) -> str:
    lines = [
        f"id: bench-other-{index:02d}",
        f"name: 其他规则 {index:02d}",
        "trigger:",
        f"  event: {event}",
    ]
    if condition is not None:
        lines.append(f'  if: "{condition}"')
    if keywords:
        lines.append(f"  keywords: [{', '.join(keywords)}]")
    lines += [
        "steps:",
        f"  - tag: {{add: [规则{index:02d}]}}",
        "  - send:",
        "      channel: mock",
        "      category: service",
        f"      text: \"{{{{ contact.name or '亲' }}}}，这是规则 {index:02d}。\"",
        "",
    ]
    return "\n".join(lines)


def write_playbooks(folder: Path) -> None:
    """20 playbooks, one of which matches the driven events, and a ``policies.yaml``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "policies.yaml").write_text("timezone: Asia/Shanghai\n", encoding="utf-8")
    (folder / f"{MATCHING_PLAYBOOK}.yaml").write_text(_MATCHING, encoding="utf-8")
    others: list[tuple[str, str | None, Any]] = [("order.paid", c, None) for c in _FALSE_CONDITIONS]
    others += [(event, None, keywords) for event, keywords in _OTHER_EVENTS]
    assert len(others) == PLAYBOOK_COUNT - 1
    for index, (event, condition, keywords) in enumerate(others, start=1):
        text = _other_playbook(index, event, condition, keywords)
        (folder / f"bench-other-{index:02d}.yaml").write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------------------------
# Events

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_GIVEN = ("伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "洋", "艳", "杰", "娟", "涛", "明", "超")
_PRODUCTS = (
    ("FACE-WASH", "洗面奶", 99),
    ("TONER-200", "爽肤水 200ml", 159),
    ("SERUM-30", "精华液 30ml", 329),
    ("CREAM-50", "面霜 50g", 259),
    ("MASK-10", "面膜 10 片", 129),
    ("SUNSCREEN", "防晒霜", 189),
    ("LIP-BALM", "润唇膏", 49),
    ("GIFT-BOX", "礼盒装", 599),
)


class EventFactory:
    """``order.paid`` events with unique ids from a fixed pool of customers."""

    def __init__(self, *, run: str, contacts: int, seed: int) -> None:
        self._random = random.Random(seed)
        self._run = run
        self._serial = 0
        self._customers = [
            (
                f"13{self._random.randint(0, 9)}{n:08d}",
                self._random.choice(_SURNAMES) + self._random.choice(_GIVEN),
            )
            for n in self._random.sample(range(100_000_000), contacts)
        ]
        self._start = datetime.now(UTC).astimezone(SHANGHAI).replace(microsecond=0)

    def event(self) -> dict[str, Any]:
        self._serial += 1
        rnd = self._random
        phone, name = rnd.choice(self._customers)
        lines = [
            (product, rnd.randint(1, 3)) for product in rnd.sample(_PRODUCTS, rnd.randint(1, 3))
        ]
        items = [
            {"sku": sku, "name": title, "quantity": quantity, "price": price}
            for (sku, title, price), quantity in lines
        ]
        occurred = self._start - timedelta(seconds=rnd.randint(0, 3600))
        return {
            "id": f"{self._run}-{self._serial:07d}",
            "type": "order.paid",
            "occurred_at": occurred.isoformat(),
            "contact": {"phone": phone, "name": name},
            "data": {
                "order_id": f"SO{self._run[-6:].upper()}{self._serial:07d}",
                "total": sum(price * quantity for (_, _, price), quantity in lines),
                "currency": "CNY",
                "items": items,
            },
        }

    def singles(self, count: int) -> list[bytes]:
        return [encode(self.event()) for _ in range(count)]

    def batches(self, count: int, size: int) -> list[bytes]:
        return [encode({"events": [self.event() for _ in range(size)]}) for _ in range(count)]


def encode(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


# --------------------------------------------------------------------------------------------
# Servers


def uvicorn_choices() -> tuple[str, str]:
    """The fastest event loop and HTTP parser installed; both servers get the same."""
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return loop, http


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def smr_command() -> str:
    beside = Path(sys.executable).parent / "smr"
    found = str(beside) if beside.exists() else shutil.which("smr")
    if not found:
        raise BenchError("the `smr` command is not installed (run `make install`)")
    return found


@dataclass
class Server:
    name: str
    command: list[str]
    env: dict[str, str]
    port: int
    log_path: Path
    ready_path: str
    process: subprocess.Popen[bytes] | None = None
    _log: TextIO | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._log = self.log_path.open("w", encoding="utf-8")
        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the bench only; it stops the servers
        )

    def wait_ready(self, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last = "no answer"
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process is None or self.process.poll() is not None:
                    code = None if self.process is None else self.process.returncode
                    raise BenchError(
                        f"{self.name} exited with code {code} before it was ready; "
                        f"output, last lines:\n{self.log_tail()}"
                    )
                try:
                    response = client.get(self.base_url + self.ready_path)
                except httpx.HTTPError as exc:
                    last = f"{type(exc).__name__}"
                else:
                    if response.status_code == 200:
                        body: dict[str, Any] = response.json()
                        return body
                    last = f"HTTP {response.status_code}: {response.text[:300]}"
                time.sleep(0.1)
        raise BenchError(
            f"{self.name} not ready after {timeout:.0f}s ({last}); output, last lines:\n"
            + self.log_tail()
        )

    def cpu_seconds(self) -> float | None:
        return None if self.process is None else process_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        if self.process is not None:
            terminate(self.process, timeout=15)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = STDERR_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no output)"
        return "\n".join(text.splitlines()[-lines:]) or "(no output)"

    def log_problems(self) -> list[str]:
        """The distinct exceptions the server logged, each with how often it occurred."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        counts: dict[str, int] = {}
        for line in text.splitlines():
            if EXCEPTION_LINE.match(line):
                counts[line[:240]] = counts.get(line[:240], 0) + 1
        return [f"{self.name}: {n} x {line}" for line, n in counts.items()]


def server_env(extra: dict[str, str]) -> dict[str, str]:
    """This environment without any SMR_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMR_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def uvicorn_flags(port: int, loop: str, http: str) -> list[str]:
    return [
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--loop",
        loop,
        "--http",
        http,
        "--no-access-log",
    ]


# --------------------------------------------------------------------------------------------
# CPU accounting (Linux /proc; absent elsewhere)

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


def postgres_cpu_seconds() -> float | None:
    """CPU time of every process named ``postgres`` on this machine, with their reaped children.

    Backends that exited are counted through the postmaster's children times. Every database
    on the server is included, not just the bench's.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    total = 0.0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        stat = _stat_fields(entry.name)
        if stat is not None and stat[0] == "postgres":
            total += sum(int(v) for v in stat[1][11:15]) / _TICKS  # utime stime cutime cstime
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
    (other programs, the kernel's share)."""

    def __init__(self, readings: dict[str, Callable[[], float | None]]) -> None:
        self._readings = readings
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
        known = [v for v in used.values() if v is not None]
        used["other"] = (
            None
            if machine is None or len(known) < len(used)
            else round(max(0.0, machine - sum(known)), 3)
        )
        return used


# --------------------------------------------------------------------------------------------
# Load


@dataclass
class Measurement:
    name: str
    server: Server
    requests: int
    events: int
    seconds: float
    latencies: list[float]
    cpu: dict[str, float | None]
    failures: list[str] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)  # per event, warm-up included
    answered_events: int = 0  # events in requests answered 202, warm-up included

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def percentile_ms(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "events": self.events,
            "seconds": round(self.seconds, 3),
            "requests_per_s": round(self.requests_per_s, 1),
            "events_per_s": round(self.events_per_s, 1),
            "latency_ms": {
                "mean": round(statistics.fmean(self.latencies) * 1000, 2)
                if self.latencies
                else None,
                "p50": round(self.percentile_ms(0.50), 2),
                "p99": round(self.percentile_ms(0.99), 2),
                "max": round(max(self.latencies, default=0.0) * 1000, 2),
            },
            "cpu_cores_used": self.cpu,
            "result_statuses": self.statuses,
            "failed_requests": len(self.failures),
            "first_failures": self.failures[:3],
        }


async def drive(
    clients: Sequence[httpx.AsyncClient], requests: Sequence[httpx.Request]
) -> tuple[float, list[float], list[bytes], list[str]]:
    """Send every request, one in flight per client: elapsed, latencies, answers, failures."""
    work: Iterator[tuple[int, httpx.Request]] = iter(enumerate(requests))
    latencies: list[float] = []
    answers: list[bytes] = []
    failures: list[str] = []

    async def worker(client: httpx.AsyncClient) -> None:
        for index, request in work:
            if len(failures) >= MAX_FAILURES:
                return
            began = time.perf_counter()
            try:
                response = await client.send(request)
            except httpx.HTTPError as exc:
                failures.append(f"request {index}: {type(exc).__name__}: {exc}")
                continue
            latencies.append(time.perf_counter() - began)
            if response.status_code == 202:
                answers.append(response.content)
            else:
                failures.append(
                    f"request {index}: HTTP {response.status_code}: {response.text[:1000]}"
                )

    began = time.perf_counter()
    await asyncio.gather(*(worker(client) for client in clients[: len(requests)]))
    return time.perf_counter() - began, latencies, answers, failures


def result_statuses(answers: Sequence[bytes], *, batch: bool) -> dict[str, int]:
    """How SMR (or the bare endpoint) classified each event: accepted, duplicate, ..."""
    counts: dict[str, int] = {}
    for answer in answers:
        try:
            body = json.loads(answer)
            results = body["results"] if batch else [body]
            for result in results:
                status = str(result.get("status", "?"))
                counts[status] = counts.get(status, 0) + 1
        except (ValueError, KeyError, TypeError, AttributeError):
            counts["unreadable"] = counts.get("unreadable", 0) + 1
    return counts


async def measure(
    name: str,
    server: Server,
    path: str,
    *,
    warmup: Sequence[bytes],
    timed: Sequence[bytes],
    events_per_request: int,
    concurrency: int,
    headers: dict[str, str],
) -> Measurement:
    """Warm up, then time ``timed``; failures of either are kept, and the count goes on."""
    # One client, so one keep-alive connection, per request in flight: a single client's pool
    # of 32 connections costs several times more CPU per request than 32 clients of one each,
    # enough to make this process the bottleneck.
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    timeout = httpx.Timeout(120.0, connect=10.0)
    url = server.base_url + path
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(http1=True, http2=False, limits=limits, timeout=timeout)
            )
            for _ in range(concurrency)
        ]
        # Built before the clock starts: URL parsing and header merging are client work.
        warm_requests, timed_requests = (
            [clients[0].build_request("POST", url, content=b, headers=headers) for b in bodies]
            for bodies in (warmup, timed)
        )
        warm_answers: list[bytes] = []
        warm_failures: list[str] = []
        if warm_requests:
            log(f"  {name}: warm-up, {len(warm_requests)} requests")
            _, _, warm_answers, warm_failures = await drive(clients, warm_requests)
        log(f"  {name}: timing {len(timed_requests)} requests")
        meter = CpuMeter(
            {
                "client": time.process_time,
                "server": server.cpu_seconds,
                "postgres": postgres_cpu_seconds,
            }
        )
        meter.start()
        seconds, latencies, answers, failures = await drive(clients, timed_requests)
        cpu = meter.stop(seconds)
    return Measurement(
        name=name,
        server=server,
        requests=len(answers),
        events=len(answers) * events_per_request,
        seconds=seconds,
        latencies=latencies,
        cpu=cpu,
        failures=[f"warm-up {f}" for f in warm_failures] + failures,
        statuses=result_statuses(warm_answers + answers, batch=events_per_request > 1),
        answered_events=(len(warm_answers) + len(answers)) * events_per_request,
    )


# --------------------------------------------------------------------------------------------
# Report


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def fmt_cpu(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def print_report(
    rows: Sequence[tuple[str, Measurement]], summary: dict[str, Any], setup: dict[str, Any]
) -> None:
    print()
    access = setup["access_log"]
    print(
        f"SMR ingest benchmark. SMR: {setup['smr_server']}. Both: uvicorn, 1 worker, "
        f"loop {setup['loop']}, http {setup['http']}, access log bare {access['bare']} / "
        f"SMR {access['smr']}. Client: httpx HTTP/1.1 keep-alive, concurrency "
        f"{setup['concurrency']}. {setup['cpus']} CPUs, PostgreSQL {setup['postgres_version']}."
    )
    header = (
        f"{'measurement':<34}{'requests':>9}{'events':>8}{'seconds':>9}{'req/s':>9}"
        f"{'events/s':>10}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'cpu:server':>12}{'client':>8}{'postgres':>9}{'other':>7}"
    )
    print(header)
    print("-" * len(header))
    for label, m in rows:
        cpu = m.cpu
        print(
            f"{label:<34}{m.requests:>9}{m.events:>8}{m.seconds:>9.2f}{m.requests_per_s:>9.0f}"
            f"{m.events_per_s:>10.0f}{m.percentile_ms(0.5):>8.1f}{m.percentile_ms(0.99):>8.1f}"
            f"{fmt_cpu(cpu.get('server')):>12}{fmt_cpu(cpu.get('client')):>8}"
            f"{fmt_cpu(cpu.get('postgres')):>9}{fmt_cpu(cpu.get('other')):>7}"
            + (f"   FAILED: {len(m.failures)} requests" if m.failures else "")
        )
    print("-" * len(header))
    print("cpu: cores busy during the timed requests (1.00 = one core); other = rest of machine")
    ratio = summary["single_ratio"]
    print(
        f"SMR single / bare: {ratio:.1%}  (target >= {TARGET_SINGLE_RATIO:.0%})  "
        f"{verdict(summary['single_pass'])}"
    )
    print(
        f"SMR batch of {BATCH_SIZE}: {summary['batch_events_per_s']:,.0f} events/s  "
        f"(target >= {TARGET_BATCH_EVENTS_PER_S:,.0f})  {verdict(summary['batch_pass'])}"
    )


# --------------------------------------------------------------------------------------------
# Main


def write_results(path: Path, report: dict[str, Any]) -> None:
    """Write ``report`` to ``path`` (git-ignored) and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    print(f"results written to {path.relative_to(ROOT)}")


def package_versions(*names: str) -> dict[str, str]:
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def terminate(process: subprocess.Popen[Any], *, timeout: float) -> None:
    """SIGTERM, then SIGKILL if ``process`` has not ended within ``timeout`` seconds."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Servers:
    bare: Server
    smr: Server
    description: dict[str, Any]


def prepare_servers(tmp: Path, db_dsn: str, *, smr_cli: bool = False) -> Servers:
    """Playbooks, environment and commands of both servers (not started yet); ``smr_cli``: SMR
    through the real `smr api` command (see ``--smr-cli``)."""
    loop_impl, http_impl = uvicorn_choices()
    playbooks = tmp / "playbooks"
    write_playbooks(playbooks)
    smr_env = server_env(
        {
            "SMR_DATABASE_URL": sqlalchemy_url(db_dsn),
            "SMR_PLAYBOOKS_DIR": str(playbooks),
            "SMR_INGEST_TOKENS": INGEST_TOKEN,
            "SMR_ADMIN_TOKENS": ADMIN_TOKEN,
            "SMR_DATA_DIR": str(tmp / "data"),
        }
    )
    smr = smr_command()
    smr_port, bare_port = free_port(), free_port()
    if smr_cli:
        smr_cmd = [smr, "api", "--host", "127.0.0.1", "--port", str(smr_port)]
        how = "`smr api` (API only, no dispatcher; its uvicorn defaults, access log on)"
    else:
        log("SMR: migrating the schema (smr db upgrade)")
        migrated = subprocess.run(
            [smr, "db", "upgrade"], cwd=ROOT, env=smr_env, capture_output=True, text=True
        )
        if migrated.returncode != 0:
            tail = (migrated.stdout + migrated.stderr).splitlines()[-STDERR_TAIL_LINES:]
            raise BenchError("smr db upgrade failed:\n" + "\n".join(tail))
        smr_cmd = [
            sys.executable,
            *("-m", "uvicorn", "smr_app:create", "--factory", "--app-dir", str(BENCH_DIR)),
            *uvicorn_flags(smr_port, loop_impl, http_impl),
        ]
        how = "the `smr api` app (API only, no dispatcher) under the bare endpoint's uvicorn flags"
    bare_cmd = [
        sys.executable,
        *("-m", "uvicorn", "bare_app:app", "--app-dir", str(BENCH_DIR)),
        *uvicorn_flags(bare_port, loop_impl, http_impl),
    ]
    bare_env = server_env({"BENCH_DSN": db_dsn, "BENCH_POOL_MIN": "10", "BENCH_POOL_MAX": "20"})
    return Servers(
        bare=Server("bare endpoint", bare_cmd, bare_env, bare_port, tmp / "bare.log", "/readyz"),
        smr=Server("SMR", smr_cmd, smr_env, smr_port, tmp / "smr.log", "/readyz"),
        description={
            "smr_server": how,
            "smr_command": " ".join(
                Path(smr_cmd[0]).name if i == 0 else a for i, a in enumerate(smr_cmd)
            ),
            "bare_command": " ".join(
                Path(bare_cmd[0]).name if i == 0 else a for i, a in enumerate(bare_cmd)
            ),
            "loop": loop_impl,
            "http": http_impl,
            "workers": 1,
            "access_log": {"bare": "off", "smr": "on" if smr_cli else "off"},
            "db_pool": {"bare": "asyncpg 10..20", "smr": "SQLAlchemy pool_size 20, no overflow"},
        },
    )


@dataclass
class Outcome:
    measurements: list[Measurement]
    stored: dict[str, Any]
    expected: dict[str, int]
    log_problems: list[str]
    pg_version: str


def execute(options: Options, servers: list[Server], tmp: Path) -> tuple[Outcome, Servers]:
    """Database, servers, load; the servers started are appended to ``servers``."""
    db_dsn = database_dsn(options.pg, options.database)
    log(f"database {options.database}: recreating")
    pg_version = asyncio.run(recreate_database(options.pg, options.database))
    prepared = prepare_servers(tmp, db_dsn, smr_cli=options.smr_cli)
    for server in (prepared.bare, prepared.smr):
        log(f"{server.name}: starting on port {server.port}")
        servers.append(server)
        server.start()
    prepared.bare.wait_ready()
    ready = prepared.smr.wait_ready()
    if ready.get("playbooks") != PLAYBOOK_COUNT:
        log(f"warning: SMR reports {ready.get('playbooks')} playbooks loaded")

    run_tag = f"bench-{datetime.now(UTC):%Y%m%d%H%M%S}"
    factory = EventFactory(run=run_tag, contacts=options.contacts, seed=options.seed)
    plain = {"content-type": "application/json"}
    smr_headers = {**plain, "authorization": f"Bearer {INGEST_TOKEN}"}
    plan = [  # name, server, path, warm-up, timed, events per request, headers
        ("bare single", prepared.bare, "/events", options.warmup, options.single, 1, plain),
        ("SMR single", prepared.smr, "/v1/events", options.warmup, options.single, 1, smr_headers),
        (
            f"SMR batch x{BATCH_SIZE}",
            prepared.smr,
            "/v1/events",
            options.batch_warmup,
            options.batches,
            BATCH_SIZE,
            smr_headers,
        ),
    ]
    measurements: list[Measurement] = []
    log("driving")
    for name, server, path, warm_count, timed_count, per_request, headers in plan:
        if per_request == 1:
            warm, timed = factory.singles(warm_count), factory.singles(timed_count)
        else:
            warm = factory.batches(warm_count, per_request)
            timed = factory.batches(timed_count, per_request)
        measurement = asyncio.run(
            measure(
                name,
                server,
                path,
                warmup=warm,
                timed=timed,
                events_per_request=per_request,
                concurrency=options.concurrency,
                headers=headers,
            )
        )
        if measurement.failures:
            log(f"  {name}: {len(measurement.failures)} failed requests")
        measurements.append(measurement)
    expected = {
        "bare_events": measurements[0].answered_events,
        "events": measurements[1].answered_events + measurements[2].answered_events,
    }
    outcome = Outcome(
        measurements=measurements,
        stored=asyncio.run(stored_counts(db_dsn)),
        expected=expected,
        log_problems=prepared.smr.log_problems() + prepared.bare.log_problems(),
        pg_version=pg_version,
    )
    return outcome, prepared


def run(options: Options) -> int:
    load_before = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="smr-bench-") as tmp_name:
        try:
            outcome, prepared = execute(options, servers, Path(tmp_name))
        finally:
            for server in reversed(servers):
                server.stop()
            if not options.keep_db:
                try:
                    asyncio.run(drop_database(options.pg, options.database))
                except (OSError, asyncpg.PostgresError) as exc:
                    log(f"warning: could not drop database {options.database}: {exc}")
        # The logs live in the temporary folder: read what is needed before it goes.
        failed = [m for m in outcome.measurements if m.failures]
        failure_text = [
            f"{m.name}: {len(m.failures)} failed requests, first ones:\n"
            + "\n".join(f"  {f}" for f in m.failures[:5])
            + f"\n{m.server.name} output, last lines:\n{m.server.log_tail()}"
            for m in failed
        ]

    bare, single, batch = outcome.measurements
    ratio = single.requests_per_s / bare.requests_per_s if bare.requests_per_s else 0.0
    summary = {
        "bare_single_requests_per_s": round(bare.requests_per_s, 1),
        "smr_single_requests_per_s": round(single.requests_per_s, 1),
        "batch_events_per_s": round(batch.events_per_s, 1),
        "single_ratio": round(ratio, 4),
        "single_pass": ratio >= TARGET_SINGLE_RATIO and not (bare.failures or single.failures),
        "batch_pass": batch.events_per_s >= TARGET_BATCH_EVENTS_PER_S and not batch.failures,
        "failed_requests": sum(len(m.failures) for m in outcome.measurements),
    }
    setup = {
        **prepared.description,
        "concurrency": options.concurrency,
        "single": options.single,
        "batches": options.batches,
        "batch_size": BATCH_SIZE,
        "warmup": options.warmup,
        "batch_warmup": options.batch_warmup,
        "contacts": options.contacts,
        "playbooks": PLAYBOOK_COUNT,
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "python": platform.python_version(),
        "postgres_version": outcome.pg_version,
        "httpx": httpx.__version__,
    }
    print_report(
        [
            ("bare single  POST /events", bare),
            ("SMR single   POST /v1/events", single),
            (f"SMR batch    POST /v1/events x{BATCH_SIZE}", batch),
        ],
        summary,
        setup,
    )
    notes = consistency_notes(outcome)
    notes += [f"logged: {line}" for line in outcome.log_problems[:10]]
    for note in notes:
        print(f"note: {note}")
    report = {
        "benchmark": "ingest",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "summary": summary,
        "targets": {
            "single_ratio": TARGET_SINGLE_RATIO,
            "batch_events_per_s": TARGET_BATCH_EVENTS_PER_S,
        },
        "measurements": {
            "bare_single": bare.as_json(),
            "smr_single": single.as_json(),
            "smr_batch": batch.as_json(),
        },
        "stored": outcome.stored,
        "expected": outcome.expected,
        "notes": notes,
        "setup": setup,
    }
    write_results(RESULTS_FILE, report)
    for text in failure_text:
        log(f"error: {text}")
    print(json.dumps(report, ensure_ascii=False, separators=(",", ":")), flush=True)
    return 1 if failed else 0


def consistency_notes(outcome: Outcome) -> list[str]:
    """Anything that makes the figures less trustworthy, or that the servers did not add up."""
    notes: list[str] = []
    for m in outcome.measurements:
        if m.failures:
            notes.append(f"{m.name}: {len(m.failures)} requests failed; first: {m.failures[0]}")
        unexpected = {k: v for k, v in m.statuses.items() if k != "accepted"}
        if unexpected:
            notes.append(f"{m.name}: answers other than 'accepted': {unexpected}")
        client, other = m.cpu.get("client"), m.cpu.get("other")
        if client is not None and client > 0.85:
            notes.append(
                f"{m.name}: the client used {client:.2f} of a core; "
                "the rate may be bounded by the load generator"
            )
        if other is not None and other > 0.25:
            notes.append(
                f"{m.name}: {other:.2f} cores were busy with other work on the machine; "
                "the figures are less reliable"
            )
    stored, expected = outcome.stored, outcome.expected
    for table, what in (("bare_events", "the bare endpoint"), ("events", "SMR")):
        if stored.get(table) != expected[table]:
            notes.append(
                f"{what} stored {stored.get(table)} events, {expected[table]} were answered 202"
            )
    runs = stored.get("runs_by_playbook")
    if isinstance(runs, dict):
        if set(runs) - {MATCHING_PLAYBOOK}:
            notes.append(f"runs were started by other playbooks: {runs}")
        if runs.get(MATCHING_PLAYBOOK) != expected["events"]:
            notes.append(
                f"{MATCHING_PLAYBOOK} started {runs.get(MATCHING_PLAYBOOK)} runs for "
                f"{expected['events']} events answered 202"
            )
    return notes


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


def main(argv: Sequence[str] | None = None) -> int:
    return guarded_main(run, parse_args(argv), interrupted="servers stopped")


if __name__ == "__main__":
    sys.exit(main())
