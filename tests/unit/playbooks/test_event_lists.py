"""A trigger naming several event types starts a run on any of them."""

from __future__ import annotations

from datetime import UTC, datetime

from adapters import PLAYBOOK_CHANNELS
from smr.playbooks import ContactView, EventTrigger, EventView, Outcome, evaluate_event, load_text

ENGAGED = """\
id: engaged
name: 朋友圈互动
mode: parallel
trigger: {event: [moment.liked, moment.commented, moment.liked]}
steps:
  - tag: {add: [朋友圈互动]}
"""
NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def test_each_listed_event_starts_a_run_and_others_do_not() -> None:
    loaded, errors = load_text(ENGAGED, filename="engaged.yaml", channels=PLAYBOOK_CHANNELS)
    assert loaded is not None, errors
    assert errors == []
    assert loaded.trigger_events == {"moment.liked", "moment.commented"}
    assert isinstance(loaded.spec.trigger, EventTrigger)
    assert loaded.spec.trigger.events == ("moment.liked", "moment.commented")
    assert loaded.trigger_event is None

    def started(kind: str) -> bool:
        event = EventView(id="e1", type=kind, occurred_at=NOW)
        contact = ContactView(id="c1", name=None)
        found = evaluate_event(event, contact, [loaded], history={}, now=NOW, vars={})
        return [e.outcome for e in found] == [Outcome.STARTED]

    assert [started(k) for k in ("moment.liked", "moment.commented", "order.paid")] == [
        True,
        True,
        False,
    ]


def test_an_empty_list_is_refused_at_its_line() -> None:
    text = ENGAGED.replace("[moment.liked, moment.commented, moment.liked]", "[]")
    loaded, errors = load_text(text, filename="engaged.yaml", channels=PLAYBOOK_CHANNELS)
    assert loaded is None
    assert [(e.line, e.path) for e in errors] == [(4, "trigger.event")]
