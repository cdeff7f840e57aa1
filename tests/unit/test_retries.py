"""The retry schedule: full jitter below an exponential ceiling, the vendor's wait as a floor."""

from __future__ import annotations

import random

import pytest

from smr.services.retries import RETRY_AFTER_LIMIT_SECONDS, retry_delay


@pytest.mark.parametrize("attempts", [1, 2, 3, 5, 10, 40, 10_000])
def test_each_wait_lies_below_its_ceiling_and_they_spread(attempts: int) -> None:
    draw = random.Random(attempts).random
    ceiling = min(600.0, 2.0 * 2 ** min(attempts - 1, 64))

    waits = [
        retry_delay(attempts, base=2, cap=600, retry_after=None, draw=draw) for _ in range(200)
    ]

    assert all(0 <= w < ceiling for w in waits)
    assert max(waits) - min(waits) > ceiling / 2  # spread over the range, not bunched


def test_the_same_seed_gives_the_same_waits() -> None:
    def waits(seed: int) -> list[float]:
        draw = random.Random(seed).random
        return [retry_delay(n, base=2, cap=600, retry_after=None, draw=draw) for n in range(1, 9)]

    assert waits(7) == waits(7)
    assert waits(7) != waits(8)


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        (None, 3.0),
        (1.0, 3.0),
        (45.0, 45.0),
        (900.0, 900.0),
        (1e30, RETRY_AFTER_LIMIT_SECONDS),  # a date the database can hold
    ],
)
def test_the_vendors_retry_after_is_a_floor(retry_after: float | None, expected: float) -> None:
    wait = retry_delay(2, base=2, cap=600, retry_after=retry_after, draw=lambda: 0.75)

    assert wait == expected
