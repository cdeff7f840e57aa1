"""Servers as subprocesses: SMR (its API app, ``smr api``, ``smr worker``) and the bare
endpoint, on free loopback ports, each with its output in a log file.

SMR's API app and the bare endpoint run under the same uvicorn flags (``uvicorn_flags``): one
worker, no access log, the same ``--loop`` and ``--http``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx

from bench.harness.common import BENCH_DIR, ROOT, BenchError, log
from bench.harness.db import sqlalchemy_url
from bench.harness.procfs import process_cpu_seconds

INGEST_TOKEN = secrets.token_urlsafe(24)
ADMIN_TOKEN = secrets.token_urlsafe(24)
STDERR_TAIL_LINES = 40
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Warning)\b(: |$)")


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
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

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


def terminate(process: subprocess.Popen[Any], *, timeout: float) -> None:
    """SIGTERM, then SIGKILL if ``process`` has not ended within ``timeout`` seconds."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def smr_env(db_dsn: str, playbooks: Path, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of every SMR process of a run: database, playbooks, tokens, data
    folder; ``extra`` as further ``SMR_*`` variables."""
    return server_env(
        {
            "SMR_DATABASE_URL": sqlalchemy_url(db_dsn),
            "SMR_PLAYBOOKS_DIR": str(playbooks),
            "SMR_INGEST_TOKENS": INGEST_TOKEN,
            "SMR_ADMIN_TOKENS": ADMIN_TOKEN,
            "SMR_DATA_DIR": str(data_dir),
            **extra,
        }
    )


def migrate(env: dict[str, str]) -> None:
    """``smr db upgrade`` on the database of ``env``."""
    log("SMR: migrating the schema (smr db upgrade)")
    migrated = subprocess.run(
        [smr_command(), "db", "upgrade"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if migrated.returncode != 0:
        tail = (migrated.stdout + migrated.stderr).splitlines()[-STDERR_TAIL_LINES:]
        raise BenchError("smr db upgrade failed:\n" + "\n".join(tail))


def app_command(target: str, port: int, *, factory: bool = False) -> list[str]:
    """``target`` (``module:attribute`` in ``bench/``) under uvicorn with the shared flags."""
    loop_impl, http_impl = uvicorn_choices()
    return [
        sys.executable,
        *("-m", "uvicorn", target, *(["--factory"] if factory else [])),
        *("--app-dir", str(BENCH_DIR)),
        *uvicorn_flags(port, loop_impl, http_impl),
    ]


def shown(command: list[str]) -> str:
    """``command`` as printed in reports: the executable's name, not its full path."""
    return " ".join(Path(a).name if i == 0 else a for i, a in enumerate(command))


def smr_api(env: dict[str, str], folder: Path) -> Server:
    """The real ``smr api`` command (migrates on start; its uvicorn keeps the access log on)."""
    port = free_port()
    command = [smr_command(), "api", "--host", "127.0.0.1", "--port", str(port)]
    return Server("smr api", command, env, port, folder / "api.log", "/readyz")


def smr_worker(env: dict[str, str], folder: Path) -> Server:
    """The real ``smr worker`` command, with a health port (``/healthz``, ``/metrics``)."""
    port = free_port()
    command = [smr_command(), "worker", "--health-port", str(port)]
    return Server("smr worker", command, env, port, folder / "worker.log", "/healthz")


def metric_values(text: str, *names: str) -> dict[str, float]:
    """The samples of ``names`` in a Prometheus text exposition, by series (the name with
    its labels, as written: ``smr_events_processed_total{outcome="processed"}``)."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        if series.partition("{")[0] in names:
            try:
                found[series] = float(value)
            except ValueError:
                continue
    return found
