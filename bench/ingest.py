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
import importlib.util
import json
import os
import platform
import random
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
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import asyncpg  # type: ignore[import-untyped]
import httpx

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_FILE = BENCH_DIR / "results" / "ingest.json"
INGEST_TOKEN = "bench-ingest-token"
ADMIN_TOKEN = "bench-admin-token"
MATCHING_PLAYBOOK = "bench-order-paid"
PLAYBOOK_COUNT = 20
BATCH_SIZE = 100
TARGET_SINGLE_RATIO = 0.5
TARGET_BATCH_EVENTS_PER_S = 10_000.0
MAX_FAILURES = 20  # a measurement stops early after this many failed requests
SHANGHAI = timezone(timedelta(hours=8))
STDERR_TAIL_LINES = 40

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


async def recreate_database(pg: str, database: str) -> str:
    """Drop and create ``database``, make the bare endpoint's table; the server's version."""
    conn = await asyncpg.connect(pg)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{database}"')
        version = str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()
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
      text: "{{{{ contact.name or '亲' }}}}，感谢下单（订单 {{{{ event.data.order_id }}}}，¥{{{{ event.data.total }}}}）！"
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
        items = [
            {"sku": sku, "name": title, "quantity": quantity, "price": price}
            for (sku, title, price), quantity in zip(
                rnd.sample(_PRODUCTS, rnd.randint(1, 3)),
                (rnd.randint(1, 3) for _ in range(3)),
                strict=False,
            )
        ]
        occurred = self._start - timedelta(seconds=rnd.randint(0, 3600))
        return {
            "id": f"{self._run}-{self._serial:07d}",
            "type": "order.paid",
            "occurred_at": occurred.isoformat(),
            "contact": {"phone": phone, "name": name},
            "data": {
                "order_id": f"SO{self._run[-6:].upper()}{self._serial:07d}",
                "total": sum(i["quantity"] * i["price"] for i in items),
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
                    raise BenchError(f"{self.name} exited with code {code} before it was ready")
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
        raise BenchError(f"{self.name} not ready after {timeout:.0f}s ({last})")

    def cpu_seconds(self) -> float | None:
        return None if self.process is None else process_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
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
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        markers = ("Traceback", "ERROR", "Exception", "CRITICAL")
        return [line for line in text.splitlines() if any(m in line for m in markers)]


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
    """CPU time of every process named ``postgres`` (server and backends) on this machine."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    total = 0.0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        stat = _stat_fields(entry.name)
        if stat is not None and stat[0] == "postgres":
            total += (int(stat[1][11]) + int(stat[1][12])) / _TICKS
    return total


@dataclass
class CpuMeter:
    """CPU used by the client (this process), one server and PostgreSQL over an interval."""

    server: Server
    _client: float = 0.0
    _server: float | None = None
    _postgres: float | None = None

    def start(self) -> None:
        self._client = time.process_time()
        self._server = self.server.cpu_seconds()
        self._postgres = postgres_cpu_seconds()

    def stop(self, seconds: float) -> dict[str, float | None]:
        def share(before: float | None, after: float | None) -> float | None:
            if before is None or after is None or seconds <= 0:
                return None
            return round((after - before) / seconds, 3)

        return {
            "client": share(self._client, time.process_time()),
            "server": share(self._server, self.server.cpu_seconds()),
            "postgres": share(self._postgres, postgres_cpu_seconds()),
        }


# --------------------------------------------------------------------------------------------
# Load


@dataclass
class Measurement:
    name: str
    requests: int
    events: int
    seconds: float
    latencies: list[float]
    cpu: dict[str, float | None]
    failures: list[str] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)

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
            "failures": len(self.failures),
        }


async def drive(
    client: httpx.AsyncClient,
    url: str,
    bodies: Sequence[bytes],
    *,
    concurrency: int,
    headers: dict[str, str],
) -> tuple[float, list[float], list[bytes], list[str]]:
    """POST every body, ``concurrency`` at a time: elapsed seconds, latencies, answers, failures."""
    work: Iterator[tuple[int, bytes]] = iter(enumerate(bodies))
    latencies: list[float] = []
    answers: list[bytes] = []
    failures: list[str] = []

    async def worker() -> None:
        for index, body in work:
            if len(failures) >= MAX_FAILURES:
                return
            began = time.perf_counter()
            try:
                response = await client.post(url, content=body, headers=headers)
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
    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(bodies)))))
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
    log: Callable[[str], None],
) -> Measurement:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    timeout = httpx.Timeout(120.0, connect=10.0)
    url = server.base_url + path
    statuses: dict[str, int] = {}
    async with httpx.AsyncClient(http1=True, http2=False, limits=limits, timeout=timeout) as client:
        if warmup:
            log(f"  {name}: warm-up, {len(warmup)} requests")
            _, _, answers, failures = await drive(
                client, url, warmup, concurrency=concurrency, headers=headers
            )
            if failures:
                return Measurement(name, 0, 0, 0.0, [], {}, failures)
        log(f"  {name}: timing {len(timed)} requests")
        meter = CpuMeter(server)
        meter.start()
        seconds, latencies, answers, failures = await drive(
            client, url, timed, concurrency=concurrency, headers=headers
        )
        cpu = meter.stop(seconds)
        statuses = result_statuses(answers, batch=events_per_request > 1)
    return Measurement(
        name=name,
        requests=len(answers),
        events=len(answers) * events_per_request,
        seconds=seconds,
        latencies=latencies,
        cpu=cpu,
        failures=failures,
        statuses=statuses,
    )


# --------------------------------------------------------------------------------------------
# Report


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def fmt_cpu(value: float | None) -> str:
    return "  n/a" if value is None else f"{value:5.2f}"


def print_report(
    rows: Sequence[tuple[str, Measurement]], summary: dict[str, Any], setup: dict[str, Any]
) -> None:
    print()
    print(
        f"SMR ingest benchmark: {setup['smr_server']}; uvicorn 1 worker, loop {setup['loop']}, "
        f"http {setup['http']}, access log {setup['smr_access_log']} (bare: off); "
        f"concurrency {setup['concurrency']}; {setup['cpus']} CPUs; "
        f"PostgreSQL {setup['postgres_version']}"
    )
    header = (
        f"{'measurement':<34}{'requests':>9}{'events':>8}{'seconds':>9}{'req/s':>9}"
        f"{'events/s':>10}{'p50 ms':>8}{'p99 ms':>8}   cores: server client postgres"
    )
    print(header)
    print("-" * len(header))
    for label, m in rows:
        cpu = m.cpu
        print(
            f"{label:<34}{m.requests:>9}{m.events:>8}{m.seconds:>9.2f}{m.requests_per_s:>9.0f}"
            f"{m.events_per_s:>10.0f}{m.percentile_ms(0.5):>8.1f}{m.percentile_ms(0.99):>8.1f}"
            f"          {fmt_cpu(cpu.get('server'))}  {fmt_cpu(cpu.get('client'))}"
            f"    {fmt_cpu(cpu.get('postgres'))}"
        )
    print("-" * len(header))
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


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _raise_exit(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def run(options: Options) -> int:
    loop_impl, http_impl = uvicorn_choices()
    run_tag = f"bench-{datetime.now(UTC):%Y%m%d%H%M%S}"
    db_dsn = database_dsn(options.pg, options.database)
    servers: list[Server] = []
    db_created = False
    with tempfile.TemporaryDirectory(prefix="smr-bench-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            log(f"database {options.database}: recreating")
            pg_version = asyncio.run(recreate_database(options.pg, options.database))
            db_created = True

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
            if options.smr_cli:
                smr_cmd = [smr, "api", "--host", "127.0.0.1", "--port", str(smr_port)]
                smr_server_desc = "SMR via `smr api` (API only, no dispatcher)"
                smr_access_log = "on"
            else:
                log("SMR: migrating the schema (smr db upgrade)")
                migrated = subprocess.run(
                    [smr, "db", "upgrade"],
                    cwd=ROOT,
                    env=smr_env,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if migrated.returncode != 0:
                    tail = (migrated.stdout + migrated.stderr).splitlines()[-STDERR_TAIL_LINES:]
                    raise BenchError("smr db upgrade failed:\n" + "\n".join(tail))
                smr_cmd = [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "smr_app:create",
                    "--factory",
                    "--app-dir",
                    str(BENCH_DIR),
                    *uvicorn_flags(smr_port, loop_impl, http_impl),
                ]
                smr_server_desc = "SMR as `smr api` serves it (API only, no dispatcher)"
                smr_access_log = "off"
            smr_server = Server("SMR", smr_cmd, smr_env, smr_port, tmp / "smr.log", "/readyz")
            bare_server = Server(
                "bare endpoint",
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "bare_app:app",
                    "--app-dir",
                    str(BENCH_DIR),
                    *uvicorn_flags(bare_port, loop_impl, http_impl),
                ],
                server_env({"BENCH_DSN": db_dsn, "BENCH_POOL_MIN": "10", "BENCH_POOL_MAX": "20"}),
                bare_port,
                tmp / "bare.log",
                "/readyz",
            )
            for server in (bare_server, smr_server):
                log(f"{server.name}: starting on port {server.port}")
                servers.append(server)
                server.start()
            bare_server.wait_ready()
            ready = smr_server.wait_ready()
            if ready.get("playbooks") != PLAYBOOK_COUNT:
                log(f"warning: SMR reports {ready.get('playbooks')} playbooks loaded")

            factory = EventFactory(run=run_tag, contacts=options.contacts, seed=options.seed)
            bare_warm, bare_timed = factory.singles(options.warmup), factory.singles(options.single)
            smr_warm, smr_timed = factory.singles(options.warmup), factory.singles(options.single)
            batch_warm = factory.batches(options.batch_warmup, BATCH_SIZE)
            batch_timed = factory.batches(options.batches, BATCH_SIZE)

            json_headers = {"content-type": "application/json"}
            smr_headers = {**json_headers, "authorization": f"Bearer {INGEST_TOKEN}"}

            def timed_run(
                name: str,
                server: Server,
                path: str,
                warmup: Sequence[bytes],
                timed: Sequence[bytes],
                per_request: int,
                headers: dict[str, str],
            ) -> Measurement:
                measurement = asyncio.run(
                    measure(
                        name,
                        server,
                        path,
                        warmup=warmup,
                        timed=timed,
                        events_per_request=per_request,
                        concurrency=options.concurrency,
                        headers=headers,
                        log=log,
                    )
                )
                check_failures(measurement, server)
                return measurement

            log("driving")
            bare = timed_run(
                "bare single", bare_server, "/events", bare_warm, bare_timed, 1, json_headers
            )
            single = timed_run(
                "SMR single", smr_server, "/v1/events", smr_warm, smr_timed, 1, smr_headers
            )
            batch = timed_run(
                f"SMR batch x{BATCH_SIZE}",
                smr_server,
                "/v1/events",
                batch_warm,
                batch_timed,
                BATCH_SIZE,
                smr_headers,
            )

            expected_smr_events = (
                len(smr_warm) + len(smr_timed) + (len(batch_warm) + len(batch_timed)) * BATCH_SIZE
            )
            expected_bare_events = len(bare_warm) + len(bare_timed)
            stored = asyncio.run(stored_counts(db_dsn))
            problems = smr_server.log_problems() + bare_server.log_problems()
        finally:
            for server in reversed(servers):
                server.stop()
            if db_created and not options.keep_db:
                try:
                    asyncio.run(drop_database(options.pg, options.database))
                except (OSError, asyncpg.PostgresError) as exc:
                    log(f"warning: could not drop database {options.database}: {exc}")

    ratio = single.requests_per_s / bare.requests_per_s if bare.requests_per_s else 0.0
    summary = {
        "bare_single_requests_per_s": round(bare.requests_per_s, 1),
        "smr_single_requests_per_s": round(single.requests_per_s, 1),
        "batch_events_per_s": round(batch.events_per_s, 1),
        "single_ratio": round(ratio, 4),
        "single_pass": ratio >= TARGET_SINGLE_RATIO,
        "batch_pass": batch.events_per_s >= TARGET_BATCH_EVENTS_PER_S,
    }
    setup = {
        "smr_server": smr_server_desc,
        "smr_access_log": smr_access_log,
        "loop": loop_impl,
        "http": http_impl,
        "workers": 1,
        "concurrency": options.concurrency,
        "single": options.single,
        "batches": options.batches,
        "batch_size": BATCH_SIZE,
        "warmup": options.warmup,
        "batch_warmup": options.batch_warmup,
        "contacts": options.contacts,
        "playbooks": PLAYBOOK_COUNT,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "postgres_version": pg_version,
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
    notes = consistency_notes(
        stored, expected_bare_events, expected_smr_events, bare, single, batch
    )
    notes += [f"server log: {line}" for line in problems[:10]]
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
        "stored": stored,
        "notes": notes,
        "setup": setup,
    }
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    print(f"results written to {RESULTS_FILE.relative_to(ROOT)}")
    print(json.dumps(report, ensure_ascii=False, separators=(",", ":")))
    return 0


def check_failures(measurement: Measurement, server: Server) -> None:
    if not measurement.failures:
        return
    shown = "\n".join(f"  {f}" for f in measurement.failures[:5])
    raise BenchError(
        f"{measurement.name}: {len(measurement.failures)} failed requests "
        f"(stopped after {MAX_FAILURES}), first ones:\n{shown}\n"
        f"{server.name} output, last lines:\n{server.log_tail()}"
    )


def consistency_notes(
    stored: dict[str, Any],
    expected_bare_events: int,
    expected_smr_events: int,
    bare: Measurement,
    single: Measurement,
    batch: Measurement,
) -> list[str]:
    """Anything the servers wrote that does not add up."""
    notes: list[str] = []
    for m in (bare, single, batch):
        other = {k: v for k, v in m.statuses.items() if k != "accepted"}
        if other:
            notes.append(f"{m.name}: answers other than 'accepted': {other}")
        if m.cpu.get("client") is not None and (m.cpu["client"] or 0.0) > 0.85:
            notes.append(
                f"{m.name}: the client used {m.cpu['client']:.2f} of a core; "
                "the rate may be bounded by the load generator"
            )
    if stored.get("bare_events") != expected_bare_events:
        notes.append(
            f"the bare endpoint stored {stored.get('bare_events')} rows, "
            f"{expected_bare_events} were accepted"
        )
    events = stored.get("events")
    if isinstance(events, int) and events != expected_smr_events:
        notes.append(f"SMR stored {events} events, {expected_smr_events} were accepted")
    runs = stored.get("runs_by_playbook")
    if isinstance(runs, dict) and set(runs) - {MATCHING_PLAYBOOK}:
        notes.append(f"runs were started by other playbooks: {runs}")
    if isinstance(runs, dict) and runs.get(MATCHING_PLAYBOOK) != expected_smr_events:
        notes.append(
            f"{MATCHING_PLAYBOOK} started {runs.get(MATCHING_PLAYBOOK)} runs for "
            f"{expected_smr_events} events"
        )
    return notes


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_exit)
    try:
        return run(options)
    except BenchError as exc:
        log(f"error: {exc}")
        return 1
    except (OSError, asyncpg.PostgresError) as exc:
        log(f"error: {type(exc).__name__}: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
