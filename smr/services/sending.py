"""One send through a channel adapter, turned into an outcome ready to be recorded."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row

from smr.channels import (
    ChannelAdapter,
    OutboundMessage,
    PermanentSendError,
    RetriableSendError,
    SendResult,
    SkippedSend,
)

log = logging.getLogger(__name__)

RESPONSE_LIMIT = 1000


@dataclass(frozen=True)
class Outcome:
    """What handling one claimed delivery came to."""

    delivery: Row[Any]
    attempt: str  # sent | skipped | failed | retry | deferred
    response: str | None
    duration_ms: int
    retry_after: float | None = None
    skip_reason: str | None = None
    defer_until: datetime | None = None
    by_policy: bool = False  # decided by the gate; the channel was never called


async def send_one(
    adapter: ChannelAdapter, delivery: Row[Any], recipient: dict[str, str], *, limit_seconds: float
) -> Outcome:
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
    kind, response, extra = await _attempt(adapter, message, limit_seconds=limit_seconds)
    took = int((time.perf_counter() - started) * 1000)
    return Outcome(delivery, kind, _truncate(response), took, **extra)


async def _attempt(
    adapter: ChannelAdapter, message: OutboundMessage, *, limit_seconds: float
) -> tuple[str, str | None, dict[str, Any]]:
    try:
        result: SendResult = await asyncio.wait_for(adapter.send(message), limit_seconds)
    except SkippedSend as exc:
        return "skipped", exc.response, {"skip_reason": exc.reason}
    except PermanentSendError as exc:
        return "failed", exc.response, {}
    except RetriableSendError as exc:
        return "retry", exc.response, {"retry_after": exc.retry_after}
    except TimeoutError:
        return "retry", f"timed out after {limit_seconds:.0f}s", {}
    except Exception as exc:  # an adapter bug must not lose the delivery
        log.exception("channel %s raised unexpectedly", adapter.name)
        return "retry", f"internal error: {type(exc).__name__}: {exc}", {}
    return "sent", result.response or result.vendor_message_id, {}


def attempt_row(outcome: Outcome, now: datetime) -> dict[str, Any]:
    return {
        "delivery_id": outcome.delivery.id,
        "at": now,
        "outcome": outcome.attempt,
        "response": outcome.response,
        "duration_ms": outcome.duration_ms,
    }


def trace_row(outcome: Outcome, final: dict[str, Any], now: datetime) -> dict[str, Any]:
    d = outcome.delivery
    detail: dict[str, Any] = {
        "delivery_id": d.id,
        "channel": d.channel,
        "status": final["status"],
        "attempt": final["attempts"],
        "skip_reason": outcome.skip_reason,
        "response": outcome.response,
    }
    if final["status"] == "scheduled":
        detail["next_at"] = final["due_at"].isoformat()
    return {"run_id": d.run_id, "at": now, "step": d.step, "kind": "delivery", "detail": detail}


def _truncate(text: str | None) -> str | None:
    if text is None or len(text) <= RESPONSE_LIMIT:
        return text
    return text[: RESPONSE_LIMIT - 1] + "…"
