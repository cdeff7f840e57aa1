"""Ids sort by creation time, and by creation order within a millisecond."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from smr.ids import new_id


def test_ids_made_in_one_millisecond_sort_in_the_order_they_were_made() -> None:
    now = datetime(2026, 12, 6, 10, tzinfo=UTC)

    made = [new_id("dl", now) for _ in range(1000)]

    assert sorted(made) == made
    assert len(set(made)) == 1000


def test_ids_sort_by_time_first() -> None:
    now = datetime(2026, 12, 6, 10, tzinfo=UTC)

    later, earlier = new_id("dl", now + timedelta(milliseconds=1)), new_id("dl", now)

    assert earlier < later
    assert len(earlier) == len(later) == len("dl_") + 28
