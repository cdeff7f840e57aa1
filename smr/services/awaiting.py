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
import random
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import cast

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
from smr.repositories.rows import TraceRow
from smr.services import addressing
from smr.services.catalog import Catalog
from smr.services.delivery_state import (
    DeliveryState,
    Failed,
    Happened,
    Sent,
    Skipped,
    StillAwaiting,
    next_state,
)
from smr.services.funnel import Tally
from smr.services.retries import Retries
from smr.services.sending import Outcome, attempt_row, message_of, truncate
from smr.statuses import DeliveryStatus

log = logging.getLogger(__name__)

Answer = SendResult | SendError | None


class Checker:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        routes: Mapping[str, ChannelAdapter],
        settings: Settings,
        clock: Callable[[], datetime],
        catalog: Catalog,
    ) -> None:
        self._sessions = sessions
        self._catalog = catalog
        self._settings = settings
        self._retries = Retries.of(settings, draw=random.random)  # a check never retries
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
        tally = Tally(self._catalog.policies.tz)
        for p, row, answer in zip(pending, rows, answers, strict=True):
            happened = _happened(answer, waited=now - p.accepted_at)
            final = next_state(DeliveryState.of(row), happened, retries=self._retries, now=now)
            finals.append(final.row(row.id, now))
            if final.status is not DeliveryStatus.AWAITING:  # counted when it began to await
                tally.delivery(row, final.status, final.skip_reason, at=now)
            if final.status is not DeliveryStatus.AWAITING:
                attempts.append(attempt_row(Outcome(row, happened, took), now))
                trace.append(_trace(row, final, happened.response, now=now))
        async with unit_of_work(self._sessions) as session:
            await repo.finish(session, finals)
            await deliveries_repo.insert_attempts(session, attempts)
            await runs_repo.insert_trace(session, trace)
            await tally.write(session)  # last: see counts.add


def _happened(answer: Answer, *, waited: timedelta) -> Happened:
    """What a poller's answer means for an awaiting delivery (see ``ReportPoller``)."""
    response = _response(answer)
    if isinstance(answer, SendResult):
        # When WeCom says the customer got it (the staff confirmed), else when we learnt it.
        return Sent(response, at=answer.sent_at)
    if isinstance(answer, SkippedSend):
        return Skipped(answer.reason, response)
    if isinstance(answer, PermanentSendError):
        return Failed(response)
    retry_after = answer.retry_after if isinstance(answer, RetriableSendError) else None
    return StillAwaiting(waited, retry_after=retry_after, response=response)


def _response(answer: Answer) -> str | None:
    if isinstance(answer, SendResult):
        return truncate(answer.response or answer.vendor_message_id)
    return None if answer is None else truncate(answer.response)


def _trace(row: Record, final: DeliveryState, response: str | None, *, now: datetime) -> TraceRow:
    detail = {
        "delivery_id": row.id,
        "channel": row.channel,
        "status": final.status,
        "attempt": row.attempts,
        "skip_reason": final.skip_reason,
        "response": response,
        "vendor_ref": row.vendor_ref,
    }
    return TraceRow(run_id=row.run_id, at=now, step=row.step, kind="delivery", detail=detail)
