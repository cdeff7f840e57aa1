"""Time-ordered, prefixed identifiers made by the application (no round trip to learn an id)."""

from __future__ import annotations

import secrets
from datetime import datetime


def new_id(prefix: str, now: datetime) -> str:
    """``<prefix>_`` + 12 hex digits of millisecond time + 16 random hex digits.

    Ids sort by creation time (to the millisecond), so lists page by id, newest first.
    """
    return f"{prefix}_{int(now.timestamp() * 1000):012x}{secrets.randbits(64):016x}"
