"""The send policy gate: exit state, opt-out, quiet hours and frequency caps (pure functions).

Service deliveries (transactional) bypass quiet hours and caps; marketing deliveries respect all
that concern whom they reach (``Target``): caps protect a customer, so a post into a customer
group is held in quiet hours but not capped (WeCom's own monthly quota per group applies), and a
Moments post, which notifies nobody, is neither.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from smr.channels import Target
from smr.playbooks import Policies, QuietHours, format_duration
from smr.statuses import RunStatus, SkipReason

#: A run that ended this way takes its deliveries still to go with it.
ENDED_RUN = frozenset({RunStatus.EXITED, RunStatus.CANCELLED})


@dataclass(frozen=True)
class Send:
    pass


@dataclass(frozen=True)
class Skip:
    reason: SkipReason
    detail: str


@dataclass(frozen=True)
class Defer:
    until: datetime
    detail: str


Decision = Send | Skip | Defer


def decide(
    *,
    channel: str,
    category: str,
    run_status: RunStatus | None,
    opted_out: Sequence[str],
    consented: Collection[str] = frozenset(),
    sent_marketing: Sequence[datetime],
    policies: Policies,
    now: datetime,
    target: Target = Target.CONTACT,
) -> Decision:
    """What to do with one due delivery on a channel reaching ``target``. ``consented``: the
    channels the contact consented to marketing on; ``sent_marketing`` are the contact's sent
    marketing deliveries (any channel) within the longest cap period."""
    if run_status in ENDED_RUN:
        return Skip(SkipReason.EXITED, f"run {run_status}")
    if category != "marketing":
        return Send()
    if "*" in opted_out or channel in opted_out:
        scope = "all marketing" if "*" in opted_out else channel
        return Skip(SkipReason.OPTED_OUT, f"contact opted out of {scope}")
    if (
        target is Target.CONTACT
        and channel in policies.require_consent
        and channel not in consented
    ):
        return Skip(SkipReason.NO_CONSENT, f"no consent to marketing on {channel} recorded")
    if target is Target.CORP:
        return Send()
    if policies.quiet_hours and (end := quiet_until(now, policies.quiet_hours, policies.tz)):
        return Defer(end, f"quiet hours until {end.astimezone(policies.tz):%H:%M}")
    return _capped(sent_marketing, policies, now) if target is Target.CONTACT else Send()


def quiet_until(now: datetime, quiet: QuietHours, tz: ZoneInfo) -> datetime | None:
    """The end of the quiet window ``now`` falls in, or None outside it."""
    local = now.astimezone(tz)
    start, end = quiet.start, quiet.end
    t = local.timetz().replace(tzinfo=None)
    inside = (start <= t < end) if start < end else (t >= start or t < end)
    if not inside:
        return None
    day = local.date() if t < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=tz).astimezone(now.tzinfo)


def _capped(sent: Sequence[datetime], policies: Policies, now: datetime) -> Decision:
    for cap in policies.frequency_caps:
        window = [t for t in sent if now - t < cap.per]
        if len(window) >= cap.max:
            detail = (
                f"{len(window)} marketing messages in {format_duration(cap.per)} (cap {cap.max})"
            )
            if policies.on_cap == "skip":
                return Skip(SkipReason.FREQUENCY_CAPPED, detail)
            # The cap allows a send once the oldest counted message leaves the window.
            oldest = sorted(window)[len(window) - cap.max]
            return Defer(oldest + cap.per, detail)
    return Send()


def longest_cap(policies: Policies) -> timedelta:
    return max((cap.per for cap in policies.frequency_caps), default=timedelta(0))
