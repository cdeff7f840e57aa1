"""The event log's vocabulary: partitions, routes, statuses (no I/O).

An accepted event is appended to the log with a **partition** and a **route**. Its contact's
events all go to the contact's partition, so that one processor at a time, the partition's
owner, handles them, in the order they were accepted. The route is the contact's id when the
contact was known at accept, else the event's first identity (``fallback_route``): a customer's
first events, before a contact exists, go by their identity to its partition, and the contact
made from them takes that partition.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smr.schemas import ContactRef

#: Partitions of the log. Fixed: a contact keeps its partition for life (``contacts.partition``).
PARTITIONS = 64
#: Events of these types go first (WeCom's welcome code is valid for 20 seconds).
URGENT_TYPES = frozenset({"contact.added"})


class EventStatus(StrEnum):
    """``pending``: accepted, in the log; ``processed``: its effects are written;
    ``failed``: processing it raised, alone, and it was taken out of the log with the error as
    its evaluation (one bad event never holds back its partition); ``erased``: its contact was
    erased (PIPL), so nothing was done with it, and what it said is not kept."""

    PENDING = "pending"
    PROCESSED = "processed"
    FAILED = "failed"
    ERASED = "erased"


def partition_of(key: str) -> int:
    """The partition of a route (a contact id, or an identity as ``kind:value``)."""
    return zlib.crc32(key.encode()) % PARTITIONS


def fallback_route(contact_id: str | None, identities: dict[str, str]) -> str:
    """The route of an event whose contact is not known yet: its explicit contact id, else its
    first identity in a fixed order (phone, WeCom id, shop customer id: the order of
    ``ContactRef.identities``)."""
    if contact_id:
        return contact_id
    kind, value = next(iter(identities.items()))
    return f"{kind}:{value}"


def route_of(contact_id: str | None, identities: dict[str, str]) -> tuple[str, int]:
    """The route and partition of an event whose contact is not known yet (see
    ``fallback_route``)."""
    route = fallback_route(contact_id, identities)
    return route, partition_of(route)


@dataclass(frozen=True)
class LoggedEvent:
    """A pending event as a processor reads it from the log."""

    seq: int
    id: str
    source: str
    key: str
    type: str
    occurred_at: datetime
    received_at: datetime
    partition: int
    contact: ContactRef
    data: dict[str, Any]


@dataclass(frozen=True)
class Backlog:
    """The log's pending events: how many (counted up to a bound) and the oldest's age."""

    size: int
    lag_seconds: float
