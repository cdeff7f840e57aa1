"""The open-loop driver: requests are due at a steady rate whatever the answers take.

A closed loop (``load``) waits for an answer before the next request, so a slow server is sent
less; here request ``i`` is due at ``start + i / rate`` however many are still unanswered, as
shops and webhooks send. Requests go out through ``lanes`` clients of one keep-alive
connection each (one httpx client with a large pool costs several times more CPU per request,
and more still as requests queue in it); a due request waits for a free lane, and that wait
is recorded apart from the answer's latency. How late requests were made due against the
schedule is recorded too: a late client would flatter the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.harness.load import MAX_FAILURES

LIMITS = httpx.Limits(max_connections=1, max_keepalive_connections=1)
TIMEOUT = httpx.Timeout(120.0, connect=10.0)
Due = tuple[int, float, bytes]  # index, when it was due (perf_counter), body


@dataclass
class OpenLoopResult:
    """Requests sent and answered; per answered request its latency (sent to answered) and
    its wait for a free lane; failures by kind; how late requests were made due (seconds)."""

    sent: int = 0
    answered: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)
    lateness: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    max_outstanding: int = 0

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
    lanes: int = 64,
    beside: Callable[[], Coroutine[Any, Any, None]] | None = None,
) -> OpenLoopResult:
    """POST ``body()`` to ``url`` ``requests_per_s`` times a second for ``seconds``; wait for
    the answers. ``beside`` runs alongside until the requests are all due (a sampler), then
    is cancelled."""
    result = OpenLoopResult()
    due: asyncio.Queue[Due | None] = asyncio.Queue()
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(httpx.AsyncClient(limits=LIMITS, timeout=TIMEOUT))
            for _ in range(lanes)
        ]
        workers = [asyncio.create_task(_lane(c, url, headers, due, result)) for c in clients]
        side = asyncio.create_task(beside()) if beside is not None else None
        await _schedule(due, body, requests_per_s, seconds, result)
        if side is not None:
            side.cancel()
        for _ in workers:
            due.put_nowait(None)
        await asyncio.gather(*workers, *([side] if side else []), return_exceptions=True)
    return result


async def _schedule(
    due: asyncio.Queue[Due | None],
    body: Callable[[], bytes],
    requests_per_s: float,
    seconds: float,
    result: OpenLoopResult,
) -> None:
    interval = 1.0 / requests_per_s
    start = time.perf_counter()
    for index in range(int(seconds * requests_per_s)):
        at = start + index * interval
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        result.lateness.append(max(0.0, -delay))
        due.put_nowait((index, at, body()))
        result.sent += 1
        result.max_outstanding = max(result.max_outstanding, result.sent - _finished(result))
    result.seconds = time.perf_counter() - start


def _finished(result: OpenLoopResult) -> int:
    return result.answered + sum(result.errors.values())


async def _lane(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    due: asyncio.Queue[Due | None],
    result: OpenLoopResult,
) -> None:
    while (item := await due.get()) is not None:
        index, at, content = item
        began = time.perf_counter()
        try:
            response = await client.post(url, content=content, headers=headers)
        except httpx.HTTPError as exc:
            result.fail("no answer", f"request {index}: {type(exc).__name__}: {exc}")
            continue
        result.latencies.append(time.perf_counter() - began)
        result.waits.append(began - at)
        if response.status_code == 202:
            result.answered += 1
        else:
            text = f"request {index}: HTTP {response.status_code}: {response.text[:500]}"
            result.fail(f"HTTP {response.status_code}", text)
