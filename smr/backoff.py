"""Exponential backoff with jitter, for loops that wait out a fault of the moment."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from smr.services.retries import retry_delay


@dataclass
class Backoff:
    """The wait before the next try: ``first`` after one failure, doubling with each failure
    after it up to ``cap``. Each wait is drawn between half its value and its value ("equal
    jitter"), so processes that failed together do not all come back at the same instant."""

    first: float = 1.0
    cap: float = 30.0
    #: Draws a number in [0, 1): the jitter (a fixed draw in tests).
    draw: Callable[[], float] = random.random
    failures: int = 0

    def failed(self) -> float:
        """Count one more failure; returns how long to wait before trying again (seconds)."""
        self.failures += 1
        return retry_delay(
            self.failures, base=self.first, cap=self.cap, retry_after=None, draw=self._upper_half
        )

    def _upper_half(self) -> float:
        """Equal jitter is full jitter drawn from the upper half of the range."""
        return 0.5 + self.draw() / 2

    def succeeded(self) -> int:
        """Start over; returns how many failures came before."""
        failures, self.failures = self.failures, 0
        return failures
