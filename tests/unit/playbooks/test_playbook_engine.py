from datetime import timedelta

import pytest

from smr.playbooks import (
    ActiveRun,
    LoadedPlaybook,
    Outcome,
    RunHistory,
    evaluate_event,
    load_text,
    match_exits,
)
from tests.unit.playbooks.playbook_support import (
    CHANNELS,
    NOW,
    load_playbook,
    make_contact,
    make_event,
)


def _playbook(pb_id: str, trigger: str, **top: str) -> LoadedPlaybook:
    extra = "".join(f"{key}: {value}\n" for key, value in top.items())
    text = f"id: {pb_id}\nname: n\ntrigger: {trigger}\n{extra}steps:\n  - stop: {{}}\n"
    return load_playbook(text)


@pytest.mark.parametrize(
    ("trigger", "top", "history", "text", "outcome", "detail", "ends"),
    [
        ("{event: order.paid}", {}, RunHistory(), None, Outcome.STARTED, None, []),
        (
            "{event: order.paid, keywords: [价格, PRICE]}",
            {},
            RunHistory(),
            "what is the price?",
            Outcome.STARTED,
            None,
            [],
        ),
        (
            "{event: order.paid, keywords: [价格]}",
            {},
            RunHistory(),
            None,
            Outcome.KEYWORD_NOT_FOUND,
            "keywords: 价格",
            [],
        ),
        (
            "{event: order.paid, if: \"'X' in event.skus\"}",
            {},
            RunHistory(),
            None,
            Outcome.CONDITION_FALSE,
            "'X' in event.skus",
            [],
        ),
        (
            '{event: order.paid, if: "event.data.nope > 1"}',
            {},
            RunHistory(),
            None,
            Outcome.CONDITION_ERROR,
            "event.data.nope > 1: 'dict object' has no attribute 'nope'",
            [],
        ),
        (
            "{event: order.paid}",
            {},
            RunHistory(active_run_ids=[3]),
            None,
            Outcome.REFUSED_MODE,
            "run 3 is active (mode: single)",
            [],
        ),
        (
            "{event: order.paid}",
            {"mode": "parallel", "cooldown": "1d"},
            RunHistory(last_started_at=NOW - timedelta(hours=2)),
            None,
            Outcome.REFUSED_COOLDOWN,
            "last start 2h ago, cooldown 1d",
            [],
        ),
        (
            "{event: order.paid}",
            {"mode": "parallel", "cooldown": "1h"},
            RunHistory(active_run_ids=[3], last_started_at=NOW - timedelta(hours=2)),
            None,
            Outcome.STARTED,
            None,
            [],
        ),
        (
            "{event: order.paid}",
            {"mode": "restart"},
            RunHistory(active_run_ids=[3, 4]),
            None,
            Outcome.STARTED,
            None,
            [3, 4],
        ),
    ],
)
def test_evaluate_event_outcomes(
    trigger: str,
    top: dict[str, str],
    history: RunHistory,
    text: str | None,
    outcome: Outcome,
    detail: str | None,
    ends: list[int],
) -> None:
    playbook = _playbook("pb", trigger, **top)
    event = make_event(text=text) if text else make_event()
    [evaluation] = evaluate_event(
        event, make_contact(), [playbook], history={"pb": history}, now=NOW, vars={}
    )
    assert (evaluation.outcome, evaluation.detail, evaluation.ends_runs) == (outcome, detail, ends)
    assert evaluation.version == playbook.version


def test_evaluate_event_lists_only_enabled_matching_event_playbooks() -> None:
    playbooks = [
        _playbook("zeta", "{event: order.paid}"),
        _playbook("alpha", "{event: order.paid}"),
        _playbook("off", "{event: order.paid}", enabled="false"),
        _playbook("chat", "{event: chat.message}"),
        _playbook("weekly", '{schedule: "0 10 * * 5"}'),
    ]
    evaluations = evaluate_event(
        make_event(), make_contact(), playbooks, history={}, now=NOW, vars={}
    )
    assert [e.playbook_id for e in evaluations] == ["alpha", "zeta"]


def test_condition_sees_contact_and_vars() -> None:
    playbook = _playbook("pb", '{event: order.paid, if: "contact.stats.orders >= vars.min"}')
    [started] = evaluate_event(
        make_event(), make_contact(orders=2), [playbook], history={}, now=NOW, vars={"min": 2}
    )
    [refused] = evaluate_event(
        make_event(), make_contact(orders=1), [playbook], history={}, now=NOW, vars={"min": 2}
    )
    assert (started.outcome, refused.outcome) == (Outcome.STARTED, Outcome.CONDITION_FALSE)


EXITS = """\
id: repurchase
name: n
trigger: {event: order.paid}
steps:
  - wait: 1d
exit_on:
  - event: order.refunded
    if: "event.data.order_id == trigger.data.order_id"
  - event: contact.deleted
  - event: chat.message
    if: "event.data.missing"
"""


@pytest.mark.parametrize(
    ("event_type", "data", "expected"),
    [
        ("order.refunded", {"order_id": "A"}, [(1, 0)]),
        ("order.refunded", {"order_id": "B"}, [(2, 0)]),
        ("contact.deleted", {}, [(1, 1), (2, 1)]),
        ("chat.message", {"text": "hi"}, []),
        ("order.paid", {"order_id": "A"}, []),
    ],
)
def test_match_exits(
    event_type: str,
    data: dict[str, str],
    expected: list[tuple[int, int]],
) -> None:
    playbook = load_playbook(EXITS)
    active = [
        ActiveRun(1, "repurchase", make_event(order_id="A"), NOW),
        ActiveRun(2, "repurchase", make_event(order_id="B"), NOW),
        ActiveRun(3, "gone", make_event(order_id="A"), NOW),
    ]
    matches = match_exits(
        make_event(event_type, **data),
        make_contact(),
        active,
        {"repurchase": playbook},
        now=NOW,
        vars={},
    )
    assert [(m.run_id, m.rule_index) for m in matches] == expected
    assert all(m.detail.startswith(f"exit_on[{m.rule_index}]") for m in matches)


@pytest.mark.parametrize(
    ("each", "items", "outcome", "detail"),
    [
        ("event.skus", ["A", "B"], Outcome.STARTED, None),
        # Duplicates go, numbers become text, anything else is not an item.
        ("['A', 'A', 7, none, {'x': 1}, true]", ["A", "7"], Outcome.STARTED, None),
        (
            "event.skus | select('in', ['Z'])",
            [],
            Outcome.NO_ITEMS,
            "each: event.skus | select('in', ['Z']) gave no item",
        ),
        ("'A'", [], Outcome.CONDITION_ERROR, "each: 'A' is a str, not a list"),
        (
            "event.data.nope",
            [],
            Outcome.CONDITION_ERROR,
            "each: event.data.nope: 'dict object' has no attribute 'nope'",
        ),
    ],
)
def test_trigger_each_gives_one_run_per_item(
    each: str, items: list[str], outcome: Outcome, detail: str | None
) -> None:
    playbook = _playbook("pb", f'{{event: order.paid, each: "{each}"}}', mode="parallel")
    event = make_event(items=[{"sku": "A"}, {"sku": "B"}, {"sku": "A"}])

    [evaluation] = evaluate_event(event, make_contact(), [playbook], history={}, now=NOW, vars={})

    assert (evaluation.outcome, evaluation.items, evaluation.detail) == (outcome, items, detail)


def test_trigger_each_gives_at_most_fifty_runs() -> None:
    playbook = _playbook("pb", '{event: order.paid, each: "event.skus"}', mode="parallel")
    event = make_event(items=[{"sku": f"S{i}"} for i in range(80)])

    [evaluation] = evaluate_event(event, make_contact(), [playbook], history={}, now=NOW, vars={})

    assert evaluation.items == [f"S{i}" for i in range(50)]


def test_trigger_each_needs_mode_parallel() -> None:
    text = 'id: pb\nname: n\ntrigger: {event: order.paid, each: "event.skus"}\nsteps: [stop: {}]\n'
    _, errors = load_text(text, filename="pb.yaml", channels=CHANNELS)
    assert [e.message for e in errors] == [
        "trigger.each starts a run per item, side by side: it needs mode: parallel "
        '(end an item\'s older run with exit_on, e.g. if: "run.item in event.skus")'
    ]
