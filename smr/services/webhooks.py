"""A shop webhook, from raw request to stored events: verify, translate, find the contact, ingest.

Nothing is stored unless the signature holds and the whole body reads. The events are keyed by
what happened to the order (see ``smr.inbound.webhooks.base``), so a vendor's retry, or one
payment reported twice, answers ``duplicate`` and creates nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smr.inbound.webhooks import OrderNotice, WebhookRequest, WebhookSource
from smr.inbound.webhooks.base import payload_error, payment_key
from smr.repositories import events as events_repo
from smr.schemas import EventIn, parse_events
from smr.services.accept import IngestReport, IngestResult

Ingest = Callable[[list[EventIn]], Awaitable[IngestReport]]


@dataclass(frozen=True)
class WebhookOutcome:
    status: Literal["accepted", "duplicate", "ignored"]
    results: Sequence[IngestResult] = ()
    detail: str | None = None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if self.results:
            body["events"] = [r.as_json() for r in self.results]
        return body


async def receive(
    sessions: async_sessionmaker[AsyncSession],
    source: WebhookSource,
    request: WebhookRequest,
    *,
    secret: str,
    ingest: Ingest,
) -> WebhookOutcome:
    """Raises SignatureError (401) or PayloadError (422); then nothing is stored. ``ingest``
    accepts the events (the runtime's, for this source)."""
    source.verify(request, secret)
    translation = source.translate(request)
    if not translation.notices:
        return WebhookOutcome("ignored", detail=translation.ignored)
    owners = await _owners(sessions, source.name, translation.notices)
    known = [n for n in translation.notices if n.identities or n.order_id in owners]
    unknown = [n.order_id for n in translation.notices if n not in known]
    if not known:
        detail = f"no payment of order {', '.join(unknown)} is known, so no customer to refund"
        return WebhookOutcome("ignored", detail=detail)
    events = _events(known, owners)
    report = await ingest(events)
    return WebhookOutcome("accepted" if report.accepted else "duplicate", results=report.results)


async def _owners(
    sessions: async_sessionmaker[AsyncSession], source: str, notices: Sequence[OrderNotice]
) -> dict[str, dict[str, Any]]:
    """Order id → the contact its payment was recorded for (its id; or, while the payment
    waits to be processed, the contact as the payment named it: the refund then takes the
    payment's route and comes after it), for notices that name no customer."""
    orders = {n.order_id for n in notices if not n.identities}
    if not orders:
        return {}
    async with sessions() as session:
        paid = await events_repo.by_keys(session, [(source, payment_key(o)) for o in orders])
    by_key = {e.key: {"id": e.contact_id} if e.contact_id else _named(e.contact) for e in paid}
    return {o: by_key[payment_key(o)] for o in orders if payment_key(o) in by_key}


def _named(contact: dict[str, Any] | None) -> dict[str, Any]:
    """The identities of a contact reference as stored (no name, no attributes)."""
    return {k: v for k, v in (contact or {}).items() if k not in ("name", "attributes")}


def _events(notices: Sequence[OrderNotice], owners: dict[str, dict[str, Any]]) -> list[EventIn]:
    payload = {
        "events": [
            {
                "id": notice.key,
                "type": notice.type,
                "occurred_at": notice.occurred_at.isoformat(),
                "contact": _contact(notice, owners.get(notice.order_id)),
                "data": notice.data(),
            }
            for notice in notices
        ]
    }
    try:
        return parse_events(payload)
    except ValidationError as exc:
        raise payload_error(exc) from None


def _contact(notice: OrderNotice, owner: dict[str, Any] | None) -> dict[str, Any]:
    if owner is not None:
        return owner
    contact: dict[str, Any] = dict(notice.identities)
    if notice.name:
        contact["name"] = notice.name[:200]
    return contact
