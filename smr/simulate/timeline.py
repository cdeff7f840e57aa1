"""A simulation's timeline, read back from its scratch database: what each playbook decided and
sent, and when, in the words of the run log."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from smr.models import Delivery, Event, TraceEntry
from smr.playbooks.policies import STAFF_CHANNEL
from smr.repositories import contacts as contacts_repo
from smr.repositories import simulation as repo
from smr.services.catalog import Catalog
from smr.services.runlog import contact_json

#: Evaluations that say nothing to an ops person (a chat line without the keyword).
QUIET_OUTCOMES = frozenset({"started", "keyword_not_found"})
#: Trace kinds shown by the delivery rows instead, or noise.
HIDDEN_KINDS = frozenset({"send", "notify", "delivery", "rate_limited", "wake"})
_EVENT_ID = re.compile(r"\bev_[0-9a-f]{28}\b")


@dataclass(frozen=True)
class Entry:
    """One line of the timeline."""

    at: datetime
    kind: str  # event, start, tag, set, wait, if, stop, error, end, send, notify, emit
    playbook: str = ""
    step: str = ""
    channel: str | None = None
    text: str | None = None
    status: str | None = None
    reason: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class Simulation:
    timeline: list[Entry]
    contact: dict[str, Any] | None
    notes: list[str]
    tz: ZoneInfo
    start: datetime
    end: datetime

    def as_json(self) -> dict[str, Any]:
        def local(entry: Entry) -> dict[str, Any]:
            return {**asdict(entry), "at": entry.at.astimezone(self.tz).isoformat()}

        return {
            "timezone": str(self.tz),
            "start": self.start.astimezone(self.tz).isoformat(),
            "end": self.end.astimezone(self.tz).isoformat(),
            "timeline": [local(e) for e in self.timeline],
            "contact": self.contact,
            "errors": [{"message": note} for note in self.notes],
        }


Keyed = tuple[tuple[datetime, int, int], Entry]


async def read_simulation(
    session: AsyncSession,
    catalog: Catalog,
    *,
    contact_id: str,
    start: datetime,
    horizon: timedelta,
    notes: list[str],
) -> Simulation:
    tz = catalog.policies.tz
    events = await repo.events(session)
    keys = {e.id: e.key for e in events}
    trace = await repo.trace(session)
    keyed = [*_events(events), *_steps(trace, keys, tz)]
    keyed += _deliveries(await repo.deliveries(session), [t for t, _ in trace], end=start + horizon)
    keyed.sort(key=lambda pair: pair[0])
    timeline = [_named(entry, keys) for _, entry in keyed]
    return Simulation(
        timeline, await _contact(session, contact_id), notes, tz, start, start + horizon
    )


def _named(entry: Entry, keys: dict[str, str]) -> Entry:
    """Event ids mean nothing in a simulation: say the scenario's own event ids instead."""
    if entry.reason is None or "ev_" not in entry.reason:
        return entry
    reason = _EVENT_ID.sub(lambda m: keys.get(m.group(0), m.group(0)), entry.reason)
    return replace(entry, reason=reason)


async def _contact(session: AsyncSession, contact_id: str) -> dict[str, Any] | None:
    contact = await contacts_repo.get(session, contact_id)
    if contact is None:
        return None
    identities = await contacts_repo.identities_of(session, [contact_id])
    return contact_json(contact, identities.get(contact_id, {}))


def _events(events: Sequence[Event]) -> list[Keyed]:
    keyed: list[Keyed] = []
    for n, event in enumerate(events):
        at = event.received_at
        text = f"{event.type} ({event.key})"
        keyed.append(((at, 0, n), Entry(at, "event", text=text, status="received")))
        for e in event.evaluations:
            if e["outcome"] not in QUIET_OUTCOMES:
                entry = Entry(
                    at, "start", e["playbook"], status=e["outcome"], reason=e.get("detail")
                )
                keyed.append(((at, 1, n), entry))
    return keyed


def _steps(trace: list[tuple[TraceEntry, str]], keys: dict[str, str], tz: ZoneInfo) -> list[Keyed]:
    keyed: list[Keyed] = []
    for t, playbook in trace:
        if t.kind not in HIDDEN_KINDS:
            entry = Entry(t.at, _kind(t.kind), playbook, t.step or "", **_described(t, keys, tz))
            keyed.append(((t.at, 2, t.id), entry))
    return keyed


def _kind(kind: str) -> str:
    return "if" if kind == "branch" else kind


def _described(t: TraceEntry, keys: dict[str, str], tz: ZoneInfo) -> dict[str, Any]:
    d = t.detail
    match t.kind:
        case "start":
            trigger = d.get("event_type") or "schedule"
            key = keys.get(d.get("event_id") or "")
            return {"status": "started", "reason": f"{trigger} ({key})" if key else trigger}
        case "end":
            return {"status": d.get("status"), "reason": d.get("reason")}
        case "wait":
            wake = datetime.fromisoformat(d["wake_at"]).astimezone(tz)
            return {"text": f"until {wake:%Y-%m-%d %H:%M}", "status": "waiting"}
        case "tag":
            changes = [f"+{t}" for t in d.get("add", [])] + [f"-{t}" for t in d.get("remove", [])]
            return {"text": " ".join(changes)}
        case "set":
            return {"text": ", ".join(f"{k}={v}" for k, v in d.get("values", {}).items())}
        case "branch":
            return {"text": d.get("expression"), "status": str(bool(d.get("result"))).lower()}
        case "error":
            return {"status": "failed", "reason": d.get("reason")}
        case "emit":
            to = ", ".join(d.get("to", []))
            status = "posted" if d.get("posted") else "not posted"
            return {
                "text": f"{d.get('type')} → {to}".strip(),
                "status": status,
                "reason": d.get("reason"),
            }
    return {"text": ", ".join(f"{k}={v}" for k, v in d.items()) or None}


def _deliveries(
    deliveries: Sequence[Delivery], trace: list[TraceEntry], *, end: datetime
) -> list[Keyed]:
    created = {(t.run_id, t.step): t.id for t in trace if t.kind in ("send", "notify")}
    outcomes: dict[str, list[TraceEntry]] = defaultdict(list)
    for t in trace:
        if t.kind in ("delivery", "rate_limited"):
            outcomes[t.detail.get("delivery_id", "")].append(t)
    keyed: list[Keyed] = []
    for d in deliveries:
        kind = "notify" if d.channel == STAFF_CHANNEL else "send"
        base = Entry(d.created_at, kind, d.playbook_id, d.step, d.channel)
        made = created.get((d.run_id, d.step), 0)
        held = [t for t in outcomes[d.id] if t.detail.get("status") == "scheduled"]
        for t in held:  # deferred by quiet hours, a cap or a rate limit (or a retry)
            entry = replace(base, at=t.at, status="deferred", reason=t.detail.get("response"))
            keyed.append(((t.at, 2, made if t.at == d.created_at else t.id), entry))
        final = [t for t in outcomes[d.id] if t.detail.get("status") != "scheduled"]
        at = d.sent_at or d.due_at
        order = made if at == d.created_at or not final else final[-1].id
        reason, detail = _why(d, final, end=end)
        text = _with_attachments(d.text, d.attachments or [])
        entry = replace(base, at=at, text=text, status=d.status, reason=reason, detail=detail)
        keyed.append(((at, 2, order), entry))
    return keyed


def _with_attachments(text: str | None, attachments: list[dict[str, Any]]) -> str | None:
    """The text, then what it carries: ``[miniprogram 立即购买; image media/poster.png]``."""
    if not attachments:
        return text
    listed = "; ".join(f"{a.get('kind')} {_labelled(a)}" for a in attachments)
    return f"{text} [{listed}]" if text else f"[{listed}]"


def _labelled(attachment: dict[str, Any]) -> str:
    media = attachment.get("media") or {}
    return str(attachment.get("title") or media.get("path") or media.get("url") or "")


def _why(d: Delivery, final: list[TraceEntry], *, end: datetime) -> tuple[str | None, str | None]:
    """The reason (a skip reason from the closed set, where there is one) and its detail."""
    response = final[-1].detail.get("response") if final else None
    if d.status == "skipped":
        return d.skip_reason, response or d.last_error
    if d.status == "failed":
        return d.last_error, None
    if d.status == "scheduled" and d.due_at > end:
        return "due after the simulated period", None
    return None, None
