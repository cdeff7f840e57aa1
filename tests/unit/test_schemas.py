"""Parsing posted events (smr.schemas): where an error lies, and events without a time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from smr.schemas import parse_events, parse_posted

RECEIVED = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


def event(key: str, type_: str = "order.paid", **data: Any) -> dict[str, Any]:
    return {
        "id": key,
        "type": type_,
        "occurred_at": "2026-12-07T10:00:00+08:00",
        "contact": {"phone": "13800138000"},
        "data": data,
    }


def test_an_order_error_is_located_at_its_event_among_events_of_other_types() -> None:
    batch = {
        "events": [
            event("a", "chat.message", text="hi"),
            event("b", order_id="o-1", total=1),
            event("c", "chat.message", text="hi"),
            event("d", order_id="o-2", total="lots", items=[{"quantity": 2}]),
        ]
    }
    with pytest.raises(ValidationError) as caught:
        parse_events(batch)
    assert sorted((e["loc"], e["type"]) for e in caught.value.errors()) == [
        (("events", 3, "data", "items", 0, "sku"), "missing"),
        (("events", 3, "data", "total"), "decimal_parsing"),
    ]


def test_consent_and_order_errors_are_located_at_their_events() -> None:
    batch = {
        "events": [
            event("a", "contact.consented", channel="sms", source="注册页"),
            event("b", "contact.consented", channel="SMS!", wording="x" * 2001),
            event("c", order_id="o-1", total="lots"),
        ]
    }
    with pytest.raises(ValidationError) as caught:
        parse_events(batch)
    assert sorted((e["loc"], e["type"]) for e in caught.value.errors()) == [
        (("events", 1, "data", "channel"), "string_pattern_mismatch"),
        (("events", 1, "data", "source"), "missing"),
        (("events", 1, "data", "wording"), "string_too_long"),
        (("events", 2, "data", "total"), "decimal_parsing"),
    ]


def test_events_posted_without_a_time_occurred_when_received() -> None:
    undated, null = event("b", order_id="o-2", total=1), event("c", order_id="o-3", total=1)
    del undated["occurred_at"]
    null["occurred_at"] = None
    posted = parse_posted(
        {"events": [event("a", order_id="o-1", total=1), undated, null]}, received_at=RECEIVED
    )
    assert posted.received == {1, 2}
    assert [e.occurred_at for e in posted.events] == [
        datetime(2026, 12, 7, 2, 0, tzinfo=UTC),
        RECEIVED,
        RECEIVED,
    ]
    single = parse_posted(undated, received_at=RECEIVED)
    assert (single.received, single.events[0].occurred_at) == (frozenset({0}), RECEIVED)


def test_without_a_received_time_an_event_needs_its_own() -> None:
    undated = event("a", order_id="o-1", total=1)
    del undated["occurred_at"]
    with pytest.raises(ValidationError) as caught:
        parse_events({"events": [undated]})
    assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [
        (("events", 0, "occurred_at"), "missing")
    ]
