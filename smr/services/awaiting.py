"""Checking on deliveries a vendor accepted but has not delivered yet (status ``awaiting``).

A WeCom mass-send task reaches the customer only once the owner staff confirms it, so its
deliveries wait in ``awaiting`` (never counted as ``sent`` before they are). Each tick the
checker claims awaiting deliveries whose check is due, asks their adapter
(``ReportPoller.poll_reports``) and records the answer: ``sent``, ``failed``, ``skipped``, or
still awaiting and checked again later, sooner while the send is fresh.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smr.channels import (
    ChannelAdapter,
    Pending,
    PermanentSendError,
    ReportPoller,
    RetriableSendError,
    SendError,
    SendResult,
    SkippedSend,
)
from smr.config import Settings
from smr.db import unit_of_work
from smr.repositories import Record
from smr.repositories import awaiting as repo
from smr.repositories import deliveries as deliveries_repo
from smr.repositories import runs as runs_repo
from smr.services import addressing
from smr.services.sending import Outcome, attempt_row, message_of, truncate

log = logging.getLogger(__name__)

FIRST_CHECK = timedelta(minutes=1)
LONGEST_INTERVAL = timedelta(hours=1)
Answer = SendResult | SendError | None


def next_check(age: timedelta) -> timedelta:
    """Check again after half the time the send has waited so far, within [1 min, 1 h]."""
    return min(LONGEST_INTERVAL, max(FIRST_CHECK, age / 2))


class Checker:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        routes: Mapping[str, ChannelAdapter],
        settings: Settings,
        clock: Callable[[], datetime],
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._clock = clock
        self._pollers = {
            channel: cast(ReportPoller, adapter)
            for channel, adapter in routes.items()
            if hasattr(adapter, "poll_reports")
        }

    async def tick(self) -> int:
        """Check the awaiting deliveries that are due, channel by channel; returns how many
        were checked."""
        checked = 0
        for channel, poller in self._pollers.items():
            checked += await self._check(channel, poller)
        return checked

    async def _check(self, channel: str, poller: ReportPoller) -> int:
        now = self._clock()
        lease = timedelta(seconds=self._settings.lease_seconds)
        async with unit_of_work(self._sessions) as session:
            rows = await repo.claim_due(
                session, channel=channel, now=now, lease=lease, limit=self._settings.batch_size
            )
            pending = await self._pending(session, rows, now)
        if not rows:
            return 0
        started = time.perf_counter()
        try:
            answers = await asyncio.wait_for(
                poller.poll_reports(pending, now=now), lease.total_seconds() / 2
            )
        except Exception as exc:  # the rows stay awaiting; their claim ends with the lease
            log.warning("checking %d awaiting %s deliveries failed: %r", len(rows), channel, exc)
            return 0
        took = int((time.perf_counter() - started) * 1000)
        await self._record(pending, rows, answers, now=now, took=took)
        return len(rows)

    async def _pending(
        self, session: AsyncSession, rows: Sequence[Record], now: datetime
    ) -> list[Pending]:
        recipients = await addressing.recipients(session, rows)
        accepted = await repo.accepted_at(session, [r.id for r in rows])
        return [
            Pending(
                message_of(r, recipients[r.id]),
                vendor_ref=r.vendor_ref or "",
                accepted_at=accepted.get(r.id, now),
            )
            for r in rows
        ]

    async def _record(
        self,
        pending: Sequence[Pending],
        rows: Sequence[Record],
        answers: Sequence[Answer],
        *,
        now: datetime,
        took: int,
    ) -> None:
        finals, attempts, trace = [], [], []
        for p, row, answer in zip(pending, rows, answers, strict=True):
            final = _final(row, answer, now=now, age=now - p.accepted_at)
            finals.append(final)
            if final["status"] != "awaiting":
                response = _response(answer)
                attempts.append(attempt_row(Outcome(row, final["status"], response, took), now))
                trace.append(_trace(row, final, response, now=now))
        async with unit_of_work(self._sessions) as session:
            await repo.finish(session, finals)
            await deliveries_repo.insert_attempts(session, attempts)
            await runs_repo.insert_trace(session, trace)


def _final(row: Record, answer: Answer, *, now: datetime, age: timedelta) -> dict[str, Any]:
    final: dict[str, Any] = {
        "id": row.id,
        "status": "awaiting",
        "skip_reason": None,
        "due_at": now + next_check(age),
        "sent_at": None,
        "last_error": None,
        "updated_at": now,
    }
    if isinstance(answer, SendResult):
        # When WeCom says the customer got it (the staff confirmed), else when we learnt it.
        final.update(status="sent", sent_at=min(answer.sent_at or now, now))
    elif isinstance(answer, SkippedSend):
        final.update(status="skipped", skip_reason=answer.reason, last_error=_response(answer))
    elif isinstance(answer, PermanentSendError):
        final.update(status="failed", last_error=_response(answer))
    elif isinstance(answer, RetriableSendError) and answer.retry_after:
        later = timedelta(seconds=answer.retry_after)
        final["due_at"] = now + max(later, next_check(age))
    if final["status"] != "awaiting":
        final["due_at"] = now
    return final


def _response(answer: Answer) -> str | None:
    if isinstance(answer, SendResult):
        return truncate(answer.response or answer.vendor_message_id)
    return None if answer is None else truncate(answer.response)


def _trace(
    row: Record, final: dict[str, Any], response: str | None, *, now: datetime
) -> dict[str, Any]:
    detail = {
        "delivery_id": row.id,
        "channel": row.channel,
        "status": final["status"],
        "attempt": row.attempts,
        "skip_reason": final["skip_reason"],
        "response": response,
        "vendor_ref": row.vendor_ref,
    }
    return {"run_id": row.run_id, "at": now, "step": row.step, "kind": "delivery", "detail": detail}
