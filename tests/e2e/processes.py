"""Start and stop real `smr` processes for end-to-end tests."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import httpx

T = TypeVar("T")
WAIT_LIMIT = 15.0


async def eventually(probe: Callable[[], Awaitable[T | None]], *, limit: float = WAIT_LIMIT) -> T:
    """Poll until ``probe`` answers something truthy, or fail after ``limit`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while loop.time() < deadline:
        found = await probe()
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not met within {limit}s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def smr_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMR_")}
    return env | overrides


def start(args: list[str], *, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "smr", *args], stdout=out, stderr=subprocess.STDOUT, env=env
        )


def stop(proc: subprocess.Popen[bytes], *, sig: int = signal.SIGTERM) -> None:
    """Signal the process and wait for it; one that does not end within 15 s is killed (never
    left running after the test) and fails the test."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"{proc.args!r} did not end within 15 s of signal {sig}") from None


async def serving(client: httpx.AsyncClient, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until the process answers /readyz; fail with its log if it exits first."""

    async def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(log.read_text())  # noqa: ASYNC240 - the process is gone
        try:
            return (await client.get("/readyz")).status_code == 200
        except httpx.TransportError:
            return False

    await eventually(ready)
