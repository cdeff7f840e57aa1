"""SMS replies (上行短信) pushed by the SMS vendor, as events.

A reply that is an unsubscribe word (``TD``, ``T``, ``N``, ``退订``, ``R`` by default; see
``SMR_SMS__UNSUBSCRIBE_REPLIES``) becomes ``contact.unsubscribed`` for channel ``sms``: from then
on marketing SMS to that phone are ``skipped: opted_out`` while service SMS still go. Any other
reply becomes ``sms.replied`` with its text, for playbooks that want to answer. Each is keyed by
the vendor's reply id, so a pushed-again reply is a duplicate.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from smr.errors import InvalidInput, field_errors
from smr.inbound.sms import Reply, ReplyFormatError, replies_in
from smr.schemas import EventIn
from smr.services.accept import IngestReport

Ingest = Callable[[list[EventIn]], Awaitable[IngestReport]]

UNSUBSCRIBED = "contact.unsubscribed"
REPLIED = "sms.replied"


def _said(text: str) -> str:
    """``td``, `` TD。`` and ``TD`` say the same: case, spaces and end punctuation aside."""
    return text.strip().strip("。.!！ ").casefold()


def events_for(
    replies: Sequence[Reply], *, provider: str, words: Collection[str], now: datetime
) -> list[EventIn]:
    unsubscribe = {_said(word) for word in words}
    events = []
    for reply in replies:
        data: dict[str, Any] = {"text": reply.text, "provider": provider}
        unsubscribing = _said(reply.text) in unsubscribe
        if unsubscribing:
            data["channel"] = "sms"
        events.append(
            EventIn.model_validate(
                {
                    "id": f"sms-reply:{reply.reply_id}",
                    "type": UNSUBSCRIBED if unsubscribing else REPLIED,
                    "occurred_at": reply.received_at or now,
                    "contact": {"phone": reply.phone},
                    "data": data,
                }
            )
        )
    return events


async def receive(
    provider: str,
    data: Any,
    *,
    words: Collection[str],
    ingest: Ingest,
    now: datetime,
) -> IngestReport | None:
    """Accept the replies in a vendor's push (``data``: its body, parsed by the edge guard)
    through ``ingest`` (the runtime's, for this provider's source); None when it carries none."""
    try:
        replies = replies_in(provider, data)
    except ReplyFormatError as exc:
        errors = [{"path": exc.path, "message": exc.message}]
        raise InvalidInput("The SMS reply push cannot be read.", errors=errors) from None
    if not replies:
        return None
    try:
        events = events_for(replies, provider=provider, words=words, now=now)
    except ValidationError as exc:
        errors = field_errors(exc.errors())
        raise InvalidInput("The SMS replies do not validate.", errors=errors) from None
    return await ingest(events)
