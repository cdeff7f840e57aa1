"""Time-ordered, prefixed identifiers made by the application (no round trip to learn an id)."""

from __future__ import annotations

import secrets
import threading
from datetime import datetime

_RANDOM_BITS = 64
_lock = threading.Lock()
_last = (0, 0)  # (millisecond, random part) of the last id made


def new_id(prefix: str, now: datetime) -> str:
    """``<prefix>_`` + 12 hex digits of millisecond time + 16 hex digits, random at the first id
    of a millisecond and counting up from there (as monotonic ULIDs do).

    Ids sort by creation time, and within one process by creation order, even when a batch
    makes many in one millisecond: lists page by id, and due deliveries go first come, first
    served.
    """
    global _last
    millisecond = int(now.timestamp() * 1000)
    with _lock:
        last_millisecond, last_random = _last
        if millisecond == last_millisecond and last_random < (1 << _RANDOM_BITS) - 1:
            random_part = last_random + 1
        else:  # half the range, so that counting up never runs out within a millisecond
            random_part = secrets.randbits(_RANDOM_BITS - 1)
        _last = (millisecond, random_part)
    return f"{prefix}_{millisecond:012x}{random_part:016x}"
