"""Dispatch: claim due deliveries, pass them through the policy gate, send them through their
channel, and record every outcome.

Claims and bookkeeping are batched: one claim statement (plus the gate's lookups), concurrent
sends, then one statement per table for the results. Deliveries due as they are made are
claimed by the processor that writes them, which has them gated in its transaction (``gate``)
and sent after its commit (``send``), as a claim's, without the claim.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smr.channels import ChannelAdapter, Target, capabilities_of
from smr.config import Settings
from smr.db import unit_of_work
from smr.repositories import Record
from smr.repositories import awaiting as awaiting_repo
from smr.repositories import contacts as contacts_repo
from smr.repositories import deliveries as repo
from smr.repositories import runs as runs_repo
from smr.repositories.rows import TraceRow
from smr.services import addressing, policy, ratelimits
from smr.services.catalog import Catalog
from smr.services.delivery_state import (
    Accepted,
    Deferred,
    DeliveryState,
    Skipped,
    next_state,
)
from smr.services.funnel import Tally
from smr.services.retries import Retries
from smr.services.sending import Outcome, attempt_row, send_batch, send_one, trace_row
from smr.statuses import DeliveryStatus, RunStatus
from smr.telemetry import ClaimKind, Telemetry

log = logging.getLogger(__name__)

MAX_CONCURRENT_SENDS = 50
#: How often a dispatcher deletes the rate limits' hits no window reaches any more.
SWEEP_EVERY = timedelta(minutes=1)
VENDOR_REF_LIMIT = 128


@dataclass(frozen=True)
class Claimed:
    delivery: Record
    recipient: dict[str, str]
    decision: policy.Decision


class Dispatcher:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        routes: Mapping[str, ChannelAdapter],
        catalog: Catalog,
        settings: Settings,
        clock: Callable[[], datetime],
        telemetry: Telemetry | None = None,
        draw: Callable[[], float] = random.random,
    ) -> None:
        """``draw``: a number in [0, 1) per retry, its jitter (seeded in tests)."""
        self._sessions = sessions
        self._retries = Retries.of(settings, draw=draw)
        self._routes = routes
        self._telemetry = telemetry or Telemetry()
        self._catalog = catalog
        self._settings = settings
        self._clock = clock
        self._limit = asyncio.Semaphore(MAX_CONCURRENT_SENDS)
        self._resendable = [name for name, a in routes.items() if a.capabilities.idempotent]
        self._addressed = {name for name, a in routes.items() if a.capabilities.addressed}
        #: Whom each channel reaches, as its vendor declares (the mock may stand in for it).
        self._targets = {
            name: declared.target for name, declared in capabilities_of(catalog.channels).items()
        }
        self._swept_at: datetime | None = None

    async def tick(self, *, max_batches: int = 20) -> int:
        """Send what is due, batch by batch, in ``dispatch_lanes`` concurrent lanes (each claims
        its own rows, so one lane's round trips overlap another's); returns how many deliveries
        were handled."""
        await self._sweep()
        lanes = max(1, self._settings.dispatch_lanes)
        handled = await asyncio.gather(*(self._lane(max_batches) for _ in range(lanes)))
        return sum(handled)

    @property
    def lease(self) -> timedelta:
        """How long a claimed delivery is held: after that, it is the next claim's (a channel
        that dedupes resends it) or ``uncertain`` (one that cannot)."""
        return timedelta(seconds=self._settings.lease_seconds)

    async def gate(
        self,
        session: AsyncSession,
        rows: Sequence[Record],
        *,
        known: Mapping[str, RunStatus] | None = None,
    ) -> list[Claimed]:
        """The policy gate, in ``session``'s transaction, for deliveries written claimed in it
        (``sending`` under a lease): what a claim does with the rows it takes. ``send`` them
        once the transaction commits. ``known``: the statuses of runs this transaction
        started (nobody else can have ended them), not read again."""
        return await self._gate(session, rows, self._clock(), known=known) if rows else []

    async def send(self, batch: Sequence[Claimed]) -> int:
        """Send and record what ``gate`` passed, its transaction committed; how many were
        handled."""
        if not batch:
            return 0
        await self._record(await self._handle_all(list(batch)))
        return len(batch)

    async def _sweep(self) -> None:
        """At most once a ``SWEEP_EVERY``: delete the rate limits' hits older than the longest
        window (see ``ratelimits.sweep``)."""
        now = self._clock()
        if self._swept_at is not None and now - self._swept_at < SWEEP_EVERY:
            return
        self._swept_at = now
        limits = ratelimits.limits_of(self._routes, self._catalog.policies)
        async with unit_of_work(self._sessions) as session:
            await ratelimits.sweep(session, limits=limits, now=now)

    async def _lane(self, max_batches: int) -> int:
        handled = 0
        for _ in range(max_batches):
            batch = await self._claim()
            if not batch:
                break
            await self._record(await self._handle_all(batch))
            handled += len(batch)
            if len(batch) < self._settings.batch_size:
                break
        return handled

    async def _claim(self) -> list[Claimed]:
        now = self._clock()
        async with unit_of_work(self._sessions) as session:
            with self._telemetry.timed_claim(ClaimKind.DELIVERIES):
                rows = await self._claim_due(session, now)
            return await self._gate(session, rows, now)

    async def _claim_due(self, session: AsyncSession, now: datetime) -> Sequence[Record]:
        lost = await repo.mark_uncertain(session, now=now, resendable=self._resendable)
        await runs_repo.insert_trace(session, [_uncertain_trace(d, now) for d in lost])
        return await repo.claim_due(
            session,
            now=now,
            lease=self.lease,
            limit=self._settings.batch_size,
            resendable=self._resendable,
        )

    async def _gate(
        self,
        session: AsyncSession,
        rows: Sequence[Record],
        now: datetime,
        *,
        known: Mapping[str, RunStatus] | None = None,
    ) -> list[Claimed]:
        limits = ratelimits.limits_of(self._routes, self._catalog.policies)
        addressed = self._addressed | ratelimits.by_staff(limits)
        recipients = await addressing.recipients(session, rows, addressed=addressed)
        known = known or {}
        unknown = [r.run_id for r in rows if r.run_id not in known]
        statuses = {**known, **await runs_repo.statuses(session, unknown)}
        # Opt-outs, consents and caps concern marketing only.
        marketing = [r.contact_id for r in rows if r.category == "marketing"]
        policies = self._catalog.policies
        # With caps, this claim holds its marketing contacts until it commits, so that the
        # sends it reads next include what another lane or worker claimed for them; a contact
        # another claim holds now is left to the next tick (``busy``).
        capped = bool(policies.frequency_caps)
        allowed = await contacts_repo.permissions(session, marketing, hold=capped)
        busy = set(marketing) - allowed.keys() if capped else set()
        sent = await repo.sent_marketing(
            session,
            contact_ids=marketing,
            since=now - policy.longest_cap(policies),
            now=now,
            exclude=[r.id for r in rows],
        )
        claimed = []
        for row in rows:
            if row.category == "marketing" and row.contact_id in busy:
                claimed.append(Claimed(row, recipients[row.id], _busy(now)))
                continue
            permits = allowed.get(row.contact_id, contacts_repo.NOTHING_ALLOWED)
            decision = policy.decide(
                channel=row.channel,
                category=row.category,
                run_status=statuses.get(row.run_id),
                opted_out=permits.opted_out,
                consented=permits.consented,
                sent_marketing=sent.get(row.contact_id, []),
                policies=policies,
                now=now,
                target=self._targets.get(row.channel, Target.CONTACT),
            )
            if isinstance(decision, policy.Send) and row.category == "marketing":
                sent.setdefault(row.contact_id, []).append(now)  # counts for the rest of the batch
            claimed.append(Claimed(row, recipients[row.id], decision))
        return await _rate_limited(session, claimed, limits, now)

    async def _handle_all(self, batch: list[Claimed]) -> list[Outcome]:
        """Gate decisions become outcomes at once; the rest go to their adapters, in one call
        per adapter where it takes batches, else one call per message, concurrently."""
        decided = [_decided(c) for c in batch if not isinstance(c.decision, policy.Send)]
        by_adapter: dict[int, list[Claimed]] = {}
        for c in batch:
            if isinstance(c.decision, policy.Send):
                by_adapter.setdefault(id(self._routes[c.delivery.channel]), []).append(c)
        sent = await asyncio.gather(*(self._send(group) for group in by_adapter.values()))
        return decided + [o for group in sent for o in group]

    async def _send(self, group: list[Claimed]) -> list[Outcome]:
        adapter = self._routes[group[0].delivery.channel]
        limit = self._settings.lease_seconds / 2
        if hasattr(adapter, "send_batch"):
            pairs = [(c.delivery, c.recipient) for c in group]
            with self._telemetry.timed_call({c.delivery.channel for c in group}):
                outcomes = await send_batch(adapter, pairs, limit_seconds=limit)
        else:

            async def one(c: Claimed) -> Outcome:
                async with self._limit:
                    with self._telemetry.timed_call([c.delivery.channel]):
                        return await send_one(adapter, c.delivery, c.recipient, limit_seconds=limit)

            outcomes = list(await asyncio.gather(*(one(c) for c in group)))
        for o in outcomes:
            self._telemetry.count_send(o.delivery.channel, o.attempt)
        return outcomes

    async def _record(self, outcomes: Sequence[Outcome]) -> None:
        now = self._clock()
        finals = [self._final(o, now) for o in outcomes]
        attempts = [attempt_row(o, now) for o in outcomes if not o.by_policy]
        refs = [
            {"id": o.delivery.id, "vendor_ref": o.happened.vendor_ref[:VENDOR_REF_LIMIT]}
            for o in outcomes
            if isinstance(o.happened, Accepted)
        ]
        rows = [f.row(o.delivery.id, now) for o, f in zip(outcomes, finals, strict=True)]
        tally = Tally(self._catalog.policies.tz)
        for o, f in zip(outcomes, finals, strict=True):
            tally.delivery(o.delivery, f.status, f.skip_reason, at=now)
        async with unit_of_work(self._sessions) as session:
            await repo.finish(session, rows)
            await awaiting_repo.set_vendor_refs(session, refs)
            await repo.insert_attempts(session, attempts)
            await runs_repo.insert_trace(
                session, [trace_row(o, f, now) for o, f in zip(outcomes, finals, strict=True)]
            )
            await tally.write(session)  # last: see counts.add

    def _final(self, outcome: Outcome, now: datetime) -> DeliveryState:
        was = DeliveryState.of(outcome.delivery)
        return next_state(was, outcome.happened, retries=self._retries, now=now)


async def _rate_limited(
    session: AsyncSession, claimed: list[Claimed], limits: ratelimits.Limits, now: datetime
) -> list[Claimed]:
    """Sends over their channel's rate limit wait for its window (see ``ratelimits``)."""
    items = [(c.delivery, c.recipient, c.decision) for c in claimed]
    decisions = await ratelimits.apply(session, items, limits=limits, now=now)
    return [replace(c, decision=d) for c, d in zip(claimed, decisions, strict=True)]


def _decided(claimed: Claimed) -> Outcome:
    decision, delivery = claimed.decision, claimed.delivery
    if isinstance(decision, policy.Skip):
        return Outcome(delivery, Skipped(decision.reason, decision.detail, by_policy=True), 0)
    assert isinstance(decision, policy.Defer)
    limit = decision.limit if isinstance(decision, ratelimits.RateLimited) else None
    return Outcome(delivery, Deferred(decision.until, decision.detail), 0, rate_limit=limit)


def _busy(now: datetime) -> policy.Defer:
    return policy.Defer(now, "another claim is sending to this contact; left to the next tick")


def _uncertain_trace(d: Record, now: datetime) -> TraceRow:
    detail = {
        "delivery_id": d.id,
        "channel": d.channel,
        "status": DeliveryStatus.UNCERTAIN,
        "attempt": d.attempts,
        "response": "worker lost while sending; channel cannot dedupe a resend",
    }
    return TraceRow(run_id=d.run_id, at=now, step=d.step, kind="delivery", detail=detail)
