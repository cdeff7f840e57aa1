from typing import Any

import pytest

from smr.playbooks import build_context
from tests.unit.playbooks.playbook_support import make_event

ITEMS = [
    {"sku": "FACE-WASH", "quantity": 2},
    {"sku": "TONER", "quantity": "1"},
    {"sku": "FACE-WASH", "quantity": 1},
    {"name": "gift"},
]


@pytest.mark.parametrize(
    ("data", "skus"),
    [
        ({"items": ITEMS}, ["FACE-WASH", "TONER", "FACE-WASH"]),
        ({"skus": ["A", "B"], "items": ITEMS}, ["A", "B"]),
        ({}, []),
        ({"items": "garbage"}, []),
    ],
)
def test_skus(data: dict[str, Any], skus: list[str]) -> None:
    assert make_event(**data).skus == skus


@pytest.mark.parametrize(("sku", "quantity"), [("FACE-WASH", 3), ("TONER", 1), ("MISSING", 0)])
def test_quantity_of(sku: str, quantity: int) -> None:
    assert make_event(items=ITEMS).quantity_of(sku) == quantity


def test_build_context_names() -> None:
    event = make_event()
    context = build_context(
        contact=None,  # type: ignore[arg-type]
        event=event,
        trigger=event,
        run=None,
        now=event.occurred_at,
        vars={"a": 1},
    )
    assert sorted(context) == ["contact", "event", "now", "run", "trigger", "vars"]
    assert context["vars"] == {"a": 1}
