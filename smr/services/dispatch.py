"""Dispatch: claim due deliveries, send them through their channel, record every outcome.

Claims and bookkeeping are batched: one claim statement, concurrent sends, then one statement
per table for the results, so the database sees a handful of round trips per batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smr.channels import (
    ChannelAdapter,
    OutboundMessage,
    PermanentSendError,
    RetriableSendError,
    SendResult,
    SkippedSend,
)
from smr.config import Settings
from smr.db import unit_of_work
from smr.repositories import contacts as contacts_repo
from smr.repositories import deliveries as repo
from smr.repositories import runs as runs_repo

log = logging.getLogger(__name__)

RESPONSE_LIMIT = 1000
MAX_CONCURRENT_SENDS = 50


@dataclass(frozen=True)
class Outcome:
    """What one send attempt came to, ready to be written."""

    delivery: Row[Any]
    attempt: str  # sent | skipped | retry | failed
    response: str | None
    duration_ms: int
    retry_after: float | None = None
    skip_reason: str | None = None


class Dispatcher:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        routes: Mapping[str, ChannelAdapter],
        settings: Settings,
        clock: Callable[[], datetime],
    ) -> None:
        self._sessions = sessions
        self._routes = routes
        self._settings = settings
        self._clock = clock
        self._limit = asyncio.Semaphore(MAX_CONCURRENT_SENDS)

    async def tick(self, *, max_batches: int = 20) -> int:
        """Send what is due, batch by batch; returns how many deliveries were handled."""
        handled = 0
        for _ in range(max_batches):
            batch = await self._claim()
            if not batch:
                break
            outcomes = await asyncio.gather(*(self._send(d, r) for d, r in batch))
            await self._record(outcomes)
            handled += len(batch)
            if len(batch) < self._settings.batch_size:
                break
        return handled

    async def _claim(self) -> list[tuple[Row[Any], dict[str, str]]]:
        lease = timedelta(seconds=self._settings.lease_seconds)
        async with unit_of_work(self._sessions) as session:
            rows = await repo.claim_due(
                session, now=self._clock(), lease=lease, limit=self._settings.batch_size
            )
            identities = await contacts_repo.identities_of(session, [r.contact_id for r in rows])
        return [(r, identities.get(r.contact_id, {})) for r in rows]

    async def _send(self, delivery: Row[Any], recipient: dict[str, str]) -> Outcome:
        message = OutboundMessage(
            delivery_id=delivery.id,
            channel=delivery.channel,
            category=delivery.category,
            contact_id=delivery.contact_id,
            recipient=recipient,
            text=delivery.text,
            template_code=delivery.template_code,
            params=delivery.params or {},
        )
        started = time.perf_counter()
        async with self._limit:
            kind, response, extra = await self._attempt(self._routes[delivery.channel], message)
        took = int((time.perf_counter() - started) * 1000)
        return Outcome(delivery, kind, _truncate(response), took, **extra)

    async def _attempt(
        self, adapter: ChannelAdapter, message: OutboundMessage
    ) -> tuple[str, str | None, dict[str, Any]]:
        timeout = self._settings.lease_seconds / 2
        try:
            result: SendResult = await asyncio.wait_for(adapter.send(message), timeout)
        except SkippedSend as exc:
            return "skipped", exc.response, {"skip_reason": exc.reason}
        except PermanentSendError as exc:
            return "failed", exc.response, {}
        except RetriableSendError as exc:
            return "retry", exc.response, {"retry_after": exc.retry_after}
        except TimeoutError:
            return "retry", f"timed out after {timeout:.0f}s", {}
        except Exception as exc:  # an adapter bug must not lose the delivery
            log.exception("channel %s raised unexpectedly", adapter.name)
            return "retry", f"internal error: {type(exc).__name__}: {exc}", {}
        return "sent", result.response or result.vendor_message_id, {}

    async def _record(self, outcomes: Sequence[Outcome]) -> None:
        now = self._clock()
        finals = [self._final(o, now) for o in outcomes]
        async with unit_of_work(self._sessions) as session:
            await repo.finish(session, finals)
            await repo.insert_attempts(session, [_attempt_row(o, now) for o in outcomes])
            await runs_repo.insert_trace(
                session, [_trace_row(o, f, now) for o, f in zip(outcomes, finals, strict=True)]
            )

    def _final(self, outcome: Outcome, now: datetime) -> dict[str, Any]:
        status = {"sent": "sent", "skipped": "skipped", "failed": "failed", "retry": "scheduled"}
        row: dict[str, Any] = {
            "id": outcome.delivery.id,
            "status": status[outcome.attempt],
            "skip_reason": outcome.skip_reason,
            "due_at": outcome.delivery.due_at,
            "sent_at": now if outcome.attempt == "sent" else None,
            "last_error": None if outcome.attempt == "sent" else outcome.response,
            "updated_at": now,
        }
        if outcome.attempt == "retry":
            if outcome.delivery.attempts >= self._settings.max_attempts:
                row["status"] = "failed"
            else:
                row["due_at"] = now + self._backoff(outcome)
        return row

    def _backoff(self, outcome: Outcome) -> timedelta:
        s = self._settings
        delay = s.retry_base_seconds * 2 ** (outcome.delivery.attempts - 1)
        return timedelta(seconds=min(s.retry_cap_seconds, max(delay, outcome.retry_after or 0)))


def _trace_row(outcome: Outcome, final: dict[str, Any], now: datetime) -> dict[str, Any]:
    d = outcome.delivery
    detail = {
        "delivery_id": d.id,
        "channel": d.channel,
        "status": final["status"],
        "attempt": d.attempts,
        "skip_reason": outcome.skip_reason,
        "response": outcome.response,
    }
    if final["status"] == "scheduled":
        detail["retry_at"] = final["due_at"].isoformat()
    return {"run_id": d.run_id, "at": now, "step": d.step, "kind": "delivery", "detail": detail}


def _attempt_row(outcome: Outcome, now: datetime) -> dict[str, Any]:
    return {
        "delivery_id": outcome.delivery.id,
        "at": now,
        "outcome": outcome.attempt,
        "response": outcome.response,
        "duration_ms": outcome.duration_ms,
    }


def _truncate(text: str | None) -> str | None:
    if text is None or len(text) <= RESPONSE_LIMIT:
        return text
    return text[: RESPONSE_LIMIT - 1] + "…"
