"""Builders shared by the playbook unit tests."""

from datetime import UTC, datetime
from textwrap import dedent
from typing import Any

from smr.playbooks import ContactStats, ContactView, EventView, LoadedPlaybook, RunView, load_text

CHANNELS = frozenset({"mock", "sms", "wecom"})
NOW = datetime(2024, 5, 1, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai


def load_playbook(text: str) -> LoadedPlaybook:
    loaded, errors = load_text(dedent(text), filename="pb.yaml", channels=CHANNELS)
    assert not errors, [error.format() for error in errors]
    assert loaded is not None
    return loaded


def make_event(event_type: str = "order.paid", **data: Any) -> EventView:
    return EventView(id="ev-1", type=event_type, occurred_at=NOW, data=data)


def make_contact(
    *, tags: list[str] | None = None, orders: int = 0, **attributes: Any
) -> ContactView:
    return ContactView(
        id="c-1",
        name="小王",
        tags=tags or [],
        attributes=attributes,
        identities={"phone": "13800000000"},
        stats=ContactStats(orders=orders, total_spent=0),
    )


RUN = RunView(id=7, playbook_id="pb", started_at=NOW)
