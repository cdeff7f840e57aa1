"""A chat-archive push (会话内容存档), from raw body to stored events: verify, parse, translate,
ingest (see ``smr.inbound.archive``). Nothing is stored unless the signature holds and the
whole body validates; then every message has a result: accepted, duplicate (pushed before),
or ignored and why.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from smr import edge
from smr.inbound import archive
from smr.schemas import EventIn
from smr.services.accept import IngestReport, IngestResult

Ingest = Callable[[list[EventIn]], Awaitable[IngestReport]]
Status = Literal["accepted", "duplicate", "ignored"]
STATUSES: tuple[Status, ...] = ("accepted", "duplicate", "ignored")


@dataclass(frozen=True, slots=True)
class MessageResult:
    msgid: str
    status: Status
    id: str | None = None
    event_id: str | None = None
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        found = {
            "id": self.id,
            "event_id": self.event_id,
            "reason": self.reason,
        }
        return {"msgid": self.msgid, "status": self.status} | {
            k: v for k, v in found.items() if v is not None
        }


@dataclass(frozen=True, slots=True)
class ArchiveReport:
    results: list[MessageResult]

    def counts(self) -> dict[str, int]:
        return {s: sum(r.status == s for r in self.results) for s in STATUSES}

    def as_json(self) -> dict[str, Any]:
        return {**self.counts(), "results": [r.as_json() for r in self.results]}


async def receive(
    body: bytes,
    *,
    secret: str,
    timestamp: str | None,
    signature: str | None,
    now: datetime,
    ingest: Ingest,
) -> ArchiveReport:
    """Raises SignatureError (401) or InvalidInput (422, with field paths); then nothing is
    stored."""
    archive.verify(secret, body, timestamp=timestamp, signature=signature, now=now)
    outcomes = archive.translate(archive.parse(edge.load_json(body)))
    events = archive.events_of(outcomes)
    ingested = (await ingest(events)).results if events else []
    return ArchiveReport(list(_results(outcomes, iter(ingested))))


def _results(
    outcomes: Sequence[archive.Outcome], ingested: Iterator[IngestResult]
) -> Iterator[MessageResult]:
    """Each message's result; ``ingested`` answers the events in the order they were made."""
    for outcome in outcomes:
        if isinstance(outcome, archive.Ignored):
            yield MessageResult(outcome.msgid, "ignored", reason=outcome.reason)
            continue
        result = next(ingested)
        yield MessageResult(
            str(outcome.data["msgid"]),
            result.status,
            id=result.key,
            event_id=result.event_id,
        )
