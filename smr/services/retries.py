"""When a delivery that failed for the moment is tried again.

Exponential backoff with "full jitter" (AWS Architecture Blog, "Exponential Backoff And
Jitter"): the wait before the next try is drawn uniformly below an exponential ceiling, so that
deliveries that failed together (a vendor's outage, a burst of 429s) do not all come back at the
same instant. The vendor's own Retry-After is a floor: a retry never comes sooner.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from smr.config import Settings

#: A vendor's Retry-After counts up to a day: more is a vendor's bug, and a due_at must stay a
#: date the database holds.
RETRY_AFTER_LIMIT_SECONDS = 86_400.0
_MAX_DOUBLINGS = 64


def retry_delay(
    attempts: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None,
    draw: Callable[[], float],
) -> float:
    """Seconds to wait after failed attempt number ``attempts`` (1 for the first): ``draw()``
    (a number in [0, 1)) times min(``cap``, ``base`` · 2^(attempts − 1)), and never less than
    ``retry_after`` (up to ``RETRY_AFTER_LIMIT_SECONDS``)."""
    ceiling = min(cap, base * 2.0 ** min(max(attempts - 1, 0), _MAX_DOUBLINGS))
    floor = min(retry_after or 0.0, RETRY_AFTER_LIMIT_SECONDS)
    return max(draw() * ceiling, floor)


@dataclass(frozen=True)
class Retries:
    """What bounds the retries of a delivery that failed for the moment: at most
    ``max_attempts`` calls to its channel, waits drawn by ``retry_delay``."""

    max_attempts: int
    base_seconds: float
    cap_seconds: float
    draw: Callable[[], float]

    @classmethod
    def of(cls, settings: Settings, *, draw: Callable[[], float]) -> Retries:
        return cls(
            settings.max_attempts, settings.retry_base_seconds, settings.retry_cap_seconds, draw
        )

    def delay(self, attempts: int, retry_after: float | None) -> timedelta:
        """The wait after failed attempt number ``attempts`` (see ``retry_delay``)."""
        seconds = retry_delay(
            attempts,
            base=self.base_seconds,
            cap=self.cap_seconds,
            retry_after=retry_after,
            draw=self.draw,
        )
        return timedelta(seconds=seconds)
