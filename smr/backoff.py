"""Exponential backoff with jitter, for loops that wait out a fault of the moment."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


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
        ceiling = min(self.cap, self.first * 2.0 ** min(self.failures, 32))
        self.failures += 1
        return ceiling / 2 + self.draw() * ceiling / 2

    def succeeded(self) -> int:
        """Start over; returns how many failures came before."""
        failures, self.failures = self.failures, 0
        return failures
