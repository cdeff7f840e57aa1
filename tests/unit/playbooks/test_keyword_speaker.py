"""Keyword triggers answer customers: a staff member's own words (an archived chat) never
match them, while a playbook that asks for staff messages in its ``if:`` still gets them."""

from __future__ import annotations

import pytest

from smr.playbooks import Outcome, evaluate_event
from tests.unit.playbooks.playbook_support import NOW, load_playbook, make_contact, make_event

KEYWORDS = """
id: price
name: n
trigger: {event: chat.message, keywords: [价格]}
steps:
  - stop: {}
"""
STAFF_ONLY = """
id: staff-said
name: n
trigger:
  event: chat.message
  if: "event.data.speaker == 'staff' and '价格' in event.data.text"
steps:
  - stop: {}
"""


@pytest.mark.parametrize(
    ("data", "outcome", "detail"),
    [
        ({"text": "价格多少", "speaker": "customer"}, Outcome.STARTED, None),
        ({"text": "价格多少"}, Outcome.STARTED, None),  # POST /v1/events without a speaker
        (
            {"text": "价格是 99 元", "speaker": "staff"},
            Outcome.KEYWORD_NOT_FOUND,
            "keywords match what customers write, not the staff",
        ),
        ({"text": "你好", "speaker": "customer"}, Outcome.KEYWORD_NOT_FOUND, "keywords: 价格"),
    ],
)
def test_keywords_match_customers_only(
    data: dict[str, str], outcome: Outcome, detail: str | None
) -> None:
    event = make_event("chat.message", **data)
    [evaluation] = evaluate_event(
        event, make_contact(), [load_playbook(KEYWORDS)], history={}, now=NOW, vars={}
    )
    assert (evaluation.outcome, evaluation.detail) == (outcome, detail)


def test_a_playbook_may_ask_for_the_staffs_messages_in_its_condition() -> None:
    playbook = load_playbook(STAFF_ONLY)
    staff = make_event("chat.message", text="价格是 99 元", speaker="staff")
    customer = make_event("chat.message", text="价格多少", speaker="customer")
    [said] = evaluate_event(staff, make_contact(), [playbook], history={}, now=NOW, vars={})
    [asked] = evaluate_event(customer, make_contact(), [playbook], history={}, now=NOW, vars={})
    assert (said.outcome, asked.outcome) == (Outcome.STARTED, Outcome.CONDITION_FALSE)


CUSTOMERS_ONLY = """
id: customers-only
name: n
trigger:
  event: chat.message
  if: "event.data.speaker | default('customer') == 'customer'"
steps:
  - stop: {}
"""


@pytest.mark.parametrize(
    ("data", "outcome"),
    [
        ({"text": "图片", "speaker": "customer"}, Outcome.STARTED),
        ({"text": "图片"}, Outcome.STARTED),
        ({"text": "图片", "speaker": "staff"}, Outcome.CONDITION_FALSE),
    ],
)
def test_the_documented_customers_only_condition(data: dict[str, str], outcome: Outcome) -> None:
    event = make_event("chat.message", **data)
    playbook = load_playbook(CUSTOMERS_ONLY)
    [evaluation] = evaluate_event(event, make_contact(), [playbook], history={}, now=NOW, vars={})
    assert evaluation.outcome == outcome
