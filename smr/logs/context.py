"""What a log line concerns: the request, and the events, runs and deliveries at hand.

A request's ids live in one mutable mapping for the whole request (set by
:class:`smr.api.request_id.RequestId`): what a route notes (:func:`note`) reaches every later
line of that request, the access log line included, even from tasks the request started.
Outside requests (``smr worker``), :func:`bind` scopes ids to a block of work.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

#: The fields a log line may carry, in the order JSON lines show them.
FIELDS = ("request_id", "event_id", "run_id", "delivery_id", "event_ids", "delivery_ids")
#: A list of ids longer than this is cut (the count is kept in ``<field>_count``).
MAX_IDS = 20

Ids = dict[str, object]
_ids: ContextVar[Ids | None] = ContextVar("smr_log_ids", default=None)


@contextmanager
def request_scope(request_id: str) -> Iterator[None]:
    """A fresh mapping for one request; what :func:`note` adds stays until the request ends."""
    token = _ids.set({"request_id": request_id})
    try:
        yield
    finally:
        _ids.reset(token)


@contextmanager
def bind(**ids: object) -> Iterator[None]:
    """``ids`` on every line logged inside the block (ids of None are left out)."""
    token = _ids.set({**(_ids.get() or {}), **_cleaned(ids)})
    try:
        yield
    finally:
        _ids.reset(token)


def note(**ids: object) -> None:
    """Add ``ids`` to the request's mapping (or to nothing, outside a request or a bind)."""
    found = _ids.get()
    if found is not None:
        found.update(_cleaned(ids))


def note_events(event_ids: Sequence[str]) -> None:
    """The events a request accepted: ``event_id`` for one, ``event_ids`` for a batch."""
    if len(event_ids) == 1:
        note(event_id=event_ids[0])
    elif event_ids:
        note(event_ids=event_ids)


def _cleaned(ids: dict[str, object]) -> Ids:
    found: Ids = {}
    for key, value in ids.items():
        if isinstance(value, Sequence) and not isinstance(value, str):
            found[key] = list(value[:MAX_IDS])
            if len(value) > MAX_IDS:
                found[f"{key}_count"] = len(value)
        elif value is not None:
            found[key] = value
    return found


def of(record: logging.LogRecord) -> Ids:
    """The ids :class:`WithIds` put on ``record`` (none if it did not pass one)."""
    found = getattr(record, "smr_ids", None)
    return found if isinstance(found, dict) else {}


class WithIds(logging.Filter):
    """Puts the current ids on the record as ``smr_ids``; ids given as ``extra=`` win."""

    def filter(self, record: logging.LogRecord) -> bool:
        given = {key: record.__dict__[key] for key in FIELDS if key in record.__dict__}
        record.smr_ids = {**(_ids.get() or {}), **_cleaned(given)}
        return True
