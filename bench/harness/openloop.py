"""The open-loop driver: requests leave at a steady rate whatever the answers take.

A closed loop (``load``) waits for an answer before the next request, so a slow server is sent
less; here request ``i`` leaves at ``start + i / rate`` however many are still in flight, as
shops and webhooks send. How late the sends left against that schedule is recorded: a late
client would flatter the server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.harness.load import MAX_FAILURES

# One pool for every request in flight; a request waits for a connection rather than fail.
LIMITS = httpx.Limits(max_connections=256, max_keepalive_connections=256)
TIMEOUT = httpx.Timeout(60.0, connect=10.0, pool=None)


@dataclass
class OpenLoopResult:
    """Requests sent and answered, latencies of the answers, failures by kind, and how late
    requests left against their schedule (seconds)."""

    sent: int = 0
    answered: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    lateness: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    max_in_flight: int = 0

    def fail(self, kind: str, text: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        if len(self.failures) < MAX_FAILURES:
            self.failures.append(text)


async def open_loop(
    url: str,
    *,
    headers: dict[str, str],
    body: Callable[[], bytes],
    requests_per_s: float,
    seconds: float,
    beside: Callable[[], Coroutine[Any, Any, None]] | None = None,
) -> OpenLoopResult:
    """POST ``body()`` to ``url`` ``requests_per_s`` times a second for ``seconds``; wait for
    the answers. ``beside`` runs alongside until the sending ends (a sampler), then is
    cancelled."""
    result = OpenLoopResult()
    interval = 1.0 / requests_per_s
    total = int(seconds * requests_per_s)
    in_flight: set[asyncio.Task[None]] = set()
    async with httpx.AsyncClient(limits=LIMITS, timeout=TIMEOUT) as client:
        side = asyncio.create_task(beside()) if beside is not None else None
        start = time.perf_counter()
        for index in range(total):
            delay = start + index * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            result.lateness.append(max(0.0, -delay))
            request = client.build_request("POST", url, content=body(), headers=headers)
            task = asyncio.create_task(_send(client, request, index, result))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            result.sent += 1
            result.max_in_flight = max(result.max_in_flight, len(in_flight))
        result.seconds = time.perf_counter() - start
        if side is not None:
            side.cancel()
        await asyncio.gather(*in_flight, *([side] if side else []), return_exceptions=True)
    return result


async def _send(
    client: httpx.AsyncClient, request: httpx.Request, index: int, result: OpenLoopResult
) -> None:
    began = time.perf_counter()
    try:
        response = await client.send(request)
    except httpx.HTTPError as exc:
        result.fail("no answer", f"request {index}: {type(exc).__name__}: {exc}")
        return
    result.latencies.append(time.perf_counter() - began)
    if response.status_code == 202:
        result.answered += 1
    else:
        text = f"request {index}: HTTP {response.status_code}: {response.text[:500]}"
        result.fail(f"HTTP {response.status_code}", text)
