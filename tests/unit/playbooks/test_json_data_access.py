"""Posted JSON keys win over dict methods in templates (``event.data.items`` is the list)."""

from __future__ import annotations

from datetime import UTC, datetime

from smr.playbooks import EventView, compile_template


def test_items_key_is_the_posted_list_not_the_dict_method() -> None:
    event = EventView(
        id="ev-1",
        type="order.paid",
        occurred_at=datetime(2026, 11, 23, tzinfo=UTC),
        data={"items": [{"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 1}]},
    )
    template = compile_template(
        "{% for i in event.data.items %}{{ i.sku }}×{{ i.quantity }} {% endfor %}"
    )

    assert template.render({"event": event}) == "A×2 B×1 "


def test_methods_of_dicts_without_such_key_still_work() -> None:
    template = compile_template("{{ event.data.keys() | list | sort | join(',') }}")

    assert template.render({"event": {"data": {"b": 1, "a": 2}}}) == "a,b"
