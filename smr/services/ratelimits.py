"""Per-channel send rate limits: sliding windows over the sends each channel let through,
shared by every lane and worker through the database (``send_hits``).

A channel's limits are those ``rate_limits`` in policies.yaml lists for it, else those its
adapter declares (``send_rates``; WeCom's message/send drops what passes 30 a minute or 1,000 an
hour per staff member). A limit with a ``key`` counts each staff member (the ``owner_staff`` a
message goes to or is sent as, or each userid of a notice's ``touser``) or each contact apart,
in its own bucket.

At the gate, a send its channel's limits do not let through now waits: it reserves a slot in
``send_hits`` (a hit tied to the delivery, at the time it goes), behind every slot reserved
before it, and becomes a ``RateLimited`` deferral to that slot, which dispatch records as a
scheduled delivery with a later ``due_at`` and a ``rate_limited`` entry in the run log. When
it comes due it goes on its slot without queueing again (see ``_Window``). The slot of a
delivery cancelled or skipped meanwhile stays taken until its time passes, then expires. A
delivery without the address its key counts by is not limited here (its channel skips it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from smr.channels import ChannelAdapter, SendRate
from smr.playbooks import Policies, format_duration
from smr.playbooks.policies import STAFF_CHANNEL
from smr.repositories import Record
from smr.repositories import send_hits as repo
from smr.services import policy

BUCKET_LIMIT = 200  # send_hits.bucket
Limits = Mapping[str, tuple[SendRate, ...]]
Item = tuple[Record, Mapping[str, str], policy.Decision]


@dataclass(frozen=True)
class RateLimited(policy.Defer):
    """Held back by a rate limit; ``limit`` is what the run log shows of it."""

    limit: dict[str, Any]


@dataclass(frozen=True)
class _Check:
    rate: SendRate
    bucket: str
    of: str | None  # the staff member or contact the limit counts apart


def limits_of(
    routes: Mapping[str, ChannelAdapter], policies: Policies
) -> dict[str, tuple[SendRate, ...]]:
    """channel → its limits: policies.yaml's for the channels it lists, else the adapter's."""
    limits = {channel: tuple(getattr(a, "send_rates", ())) for channel, a in routes.items()}
    listed: dict[str, list[SendRate]] = {}
    for limit in policies.rate_limits:
        listed.setdefault(limit.channel, []).append(limit.rate)
    limits.update((channel, tuple(rates)) for channel, rates in listed.items())
    return {channel: rates for channel, rates in limits.items() if rates}


def by_staff(limits: Limits) -> set[str]:
    """The channels whose limits count each staff member apart (so need the owner staff)."""
    return {c for c, rates in limits.items() if any(r.key == "staff" for r in rates)}


async def apply(
    session: AsyncSession, items: Sequence[Item], *, limits: Limits, now: datetime
) -> list[policy.Decision]:
    """The items' decisions, each send that its channel's limits do not let through now
    turned into a ``RateLimited`` until the slot reserved for it. Records the sends let
    through and the slots reserved, in the claim's transaction, after holding the channels'
    windows (see ``send_hits.hold``)."""
    checks = [_checks(d, r, limits.get(d.channel, ())) if _sends(x) else [] for d, r, x in items]
    longest = _longest(checks)
    if not longest:
        return [decision for _, _, decision in items]
    await repo.hold(
        session, {d.channel for (d, _, _), found in zip(items, checks, strict=True) if found}
    )
    window = _Window.of(await _read(session, longest, now), now)
    decisions = [decision for _, _, decision in items]
    # In the order they came due, not the order the claim returned them: first come, first served.
    for index in sorted(range(len(items)), key=lambda i: (items[i][0].due_at, items[i][0].id)):
        if checks[index]:
            delivery = items[index][0]
            decisions[index] = window.admit(delivery.id, delivery.channel, checks[index])
    await repo.release(session, buckets=longest, delivery_ids=window.released)
    await repo.record(session, window.written)
    return decisions


async def sweep(session: AsyncSession, *, limits: Limits, now: datetime) -> None:
    """Delete the hits no window reaches any more, in every bucket (with no limits, none is
    needed); ``apply`` only reads within its windows."""
    longest = max((rate.per for rates in limits.values() for rate in rates), default=timedelta())
    await repo.sweep(session, before=now - longest)


def _sends(decision: policy.Decision) -> bool:
    return isinstance(decision, policy.Send)


def _checks(
    delivery: Record, recipient: Mapping[str, str], rates: Sequence[SendRate]
) -> list[_Check]:
    found = []
    for rate in rates:
        if rate.key is None:
            found.append(_Check(rate, delivery.channel, None))
            continue
        counted = _staff(delivery, recipient) if rate.key == "staff" else [delivery.contact_id]
        found += [_Check(rate, _bucket(delivery.channel, rate.key, of), of) for of in counted if of]
    return found


def _staff(delivery: Record, recipient: Mapping[str, str]) -> list[str]:
    """The staff a send counts against: each userid a staff notice names (params
    ``touser: a|b``), the tag it names (``totag``: its members are WeCom's to know), else the
    owner staff."""
    params = (getattr(delivery, "params", None) or {}) if delivery.channel == STAFF_CHANNEL else {}
    if users := params.get("touser"):
        return list(dict.fromkeys(u for u in str(users).split("|") if u))
    if tag := params.get("totag"):
        return [f"tag:{tag}"]
    return [recipient.get("owner_staff", "")]


def _bucket(channel: str, key: str, of: str) -> str:
    bucket = f"{channel}:{key}:{of}"
    if len(bucket) <= BUCKET_LIMIT:
        return bucket
    return f"{channel}:{key}#{hashlib.sha256(of.encode()).hexdigest()}"


def _longest(checks: Sequence[Sequence[_Check]]) -> dict[str, timedelta]:
    """bucket → the longest window that counts it."""
    longest: dict[str, timedelta] = {}
    for found in checks:
        for c in found:
            longest[c.bucket] = max(longest.get(c.bucket, c.rate.per), c.rate.per)
    return longest


async def _read(
    session: AsyncSession, longest: Mapping[str, timedelta], now: datetime
) -> dict[str, list[repo.Hit]]:
    """bucket → its sends within its longest window, and its reservations (older sends are
    the dispatcher's ``sweep``'s to delete)."""
    by_window: dict[timedelta, list[str]] = {}
    for bucket, per in longest.items():
        by_window.setdefault(per, []).append(bucket)
    hits: dict[str, list[repo.Hit]] = {}
    for per, buckets in by_window.items():
        hits |= await repo.hits(session, buckets=buckets, since=now - per)
    return hits


@dataclass
class _Window:
    """The buckets of one claim: the sends made (``made``) and the slots reserved for
    deliveries held back (``slots``: delivery id → time), as the batch goes on.

    A held-back delivery queues behind every slot reserved before it, at the first time its
    windows, counting made and reserved sends alike, let one more through. When its slot
    comes it goes on it, once the sends made let it: a send the slot before it made late
    (a late tick) holds it back for as long as that send was late, never more."""

    made: dict[str, list[datetime]]
    slots: dict[str, dict[str, datetime]]
    now: datetime
    written: list[tuple[str, repo.Hit]] = field(default_factory=list)
    released: set[str] = field(default_factory=set)
    requeued: dict[str, list[datetime]] = field(default_factory=dict)

    @classmethod
    def of(cls, hits: Mapping[str, Sequence[repo.Hit]], now: datetime) -> _Window:
        made = {b: [h.at for h in found if h.delivery_id is None] for b, found in hits.items()}
        slots = {
            b: {h.delivery_id: h.at for h in found if h.delivery_id is not None}
            for b, found in hits.items()
        }
        return cls(made, slots, now)

    def admit(self, delivery_id: str, channel: str, checks: Sequence[_Check]) -> policy.Decision:
        buckets = {c.bucket for c in checks}
        owned = [self.slots[b][delivery_id] for b in buckets if delivery_id in self.slots[b]]
        if owned:
            own = max(owned)
            self.released.add(delivery_id)
            for bucket in buckets:
                self.slots[bucket].pop(delivery_id, None)
            until, check = self._latest(checks, lambda c: self._frees_at(c, self.made[c.bucket]))
            if until > self.now:  # sends made late (or a lower limit): queue behind earlier slots
                until, check = self._latest(checks, lambda c: self._behind(c, own))
                for bucket in buckets:
                    self.requeued.setdefault(bucket, []).append(until)
        else:
            until, check = self._latest(checks, self._slot)
        if until <= self.now:
            for bucket in buckets:
                self.made[bucket].append(self.now)
                self.written.append((bucket, repo.Hit(self.now)))
            return policy.Send()
        for bucket in buckets:
            self.slots[bucket][delivery_id] = until
            self.written.append((bucket, repo.Hit(until, delivery_id)))
        return self._limited(channel, check, until)

    def _latest(
        self, checks: Sequence[_Check], at: Callable[[_Check], datetime]
    ) -> tuple[datetime, _Check]:
        return max(((at(c), c) for c in checks), key=lambda found: found[0])

    def _slot(self, check: _Check) -> datetime:
        """The first time, behind every reserved slot, that this check's window lets one
        more through; all that it counts then lies before it."""
        slots = self.slots[check.bucket].values()
        return max(self._frees_at(check, [*self.made[check.bucket], *slots]), *slots, self.now)

    def _behind(self, check: _Check, own: datetime) -> datetime:
        """Like ``_slot``, counting only the slots reserved before ``own`` and those this
        batch queued again before this one (slots of one moment go in claim order)."""
        earlier = [t for t in self.slots[check.bucket].values() if t < own]
        earlier += self.requeued.get(check.bucket, [])
        return max(self._frees_at(check, [*self.made[check.bucket], *earlier]), *earlier, self.now)

    def _frees_at(self, check: _Check, hits: Sequence[datetime]) -> datetime:
        """When a window ending at or after the last of ``hits`` holds fewer than the most."""
        counted, most = sorted(hits), check.rate.max
        return counted[-most] + check.rate.per if len(counted) >= most else self.now

    def _limited(self, channel: str, check: _Check, until: datetime) -> RateLimited:
        since = self.now - check.rate.per
        sent = sum(1 for t in self.made[check.bucket] if since < t <= self.now)
        waiting = sum(1 for t in self.slots[check.bucket].values() if since < t <= until)
        return _limited(channel, check, until, sent=sent, waiting=waiting)


def _limited(
    channel: str, check: _Check, until: datetime, *, sent: int, waiting: int
) -> RateLimited:
    rate = check.rate
    per = format_duration(rate.per)
    whose = f" to {rate.key} {check.of}" if rate.key else ""
    queued = f", {waiting} waiting before it" if waiting else ""
    detail = (
        f"rate limit: {sent} sends on {channel}{whose} in {per} (limit {rate.max}){queued};"
        f" waits until {until.isoformat()}"
    )
    limit = {"max": rate.max, "per": per, "key": rate.key, "of": check.of}
    return RateLimited(until, detail, limit=limit)
