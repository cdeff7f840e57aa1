"""A contact's purchase history (smr.services.purchases): by SKU and category, net of refunds."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from smr.schemas import OrderData
from smr.services import purchases

DAY0 = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)


def order(*items: tuple[str, int, str | None]) -> OrderData:
    lines: list[dict[str, Any]] = []
    for sku, quantity, category in items:
        line: dict[str, Any] = {"sku": sku, "name": f"name-{sku}", "quantity": quantity}
        if category is not None:
            line["category"] = category
        lines.append(line)
    return OrderData.model_validate({"order_id": "o", "total": 10, "items": lines})


def test_paid_orders_count_per_sku_and_category() -> None:
    history = purchases.paid({}, order(("WASH", 2, "洁面"), ("TONER", 1, "水乳")), DAY0)
    later = DAY0 + timedelta(days=20)
    history = purchases.paid(history, order(("WASH", 1, "洁面"), ("WASH", 1, "洁面")), later)

    products, categories = purchases.views(history, later + timedelta(days=5))

    wash = products["WASH"]
    assert (wash.orders, wash.quantity, wash.refunded) == (2, 4, 0)
    assert (wash.first_bought_at, wash.last_bought_at) == (DAY0, later)
    assert (wash.days_since_last_bought, wash.name, wash.category) == (5, "name-WASH", "洁面")
    assert (products["TONER"].orders, products["TONER"].quantity) == (1, 1)
    assert (categories["洁面"].orders, categories["洁面"].quantity) == (2, 4)
    assert categories["水乳"].last_bought_at == DAY0


def test_a_refund_takes_back_units_it_can_and_no_more() -> None:
    history = purchases.paid({}, order(("WASH", 2, "洁面")), DAY0)

    history = purchases.refunded(history, order(("WASH", 3, "洁面"), ("NEVER", 1, None)))

    products, categories = purchases.views(history, DAY0)
    assert (products["WASH"].quantity, products["WASH"].refunded, products["WASH"].orders) == (
        0,
        2,
        1,
    )
    assert (categories["洁面"].quantity, categories["洁面"].refunded) == (0, 2)
    assert "NEVER" not in products


def test_the_stored_history_is_never_changed_in_place() -> None:
    history = purchases.paid({}, order(("WASH", 1, None)), DAY0)
    before = copy.deepcopy(history)

    purchases.paid(history, order(("WASH", 1, None)), DAY0 + timedelta(days=1))
    purchases.refunded(history, order(("WASH", 1, None)))

    assert history == before


def test_only_the_most_recently_bought_skus_are_kept() -> None:
    history: purchases.Purchases = {}
    for n in range(purchases.MAX_SKUS + 5):
        history = purchases.paid(history, order((f"SKU-{n}", 1, None)), DAY0 + timedelta(hours=n))

    kept = history["skus"]
    assert len(kept) == purchases.MAX_SKUS
    assert "SKU-0" not in kept
    assert f"SKU-{purchases.MAX_SKUS + 4}" in kept


def test_a_category_that_is_not_a_short_text_is_left_out() -> None:
    lines = [
        {"sku": "A", "quantity": 1, "category": "x" * (purchases.MAX_CATEGORY + 1)},
        {"sku": "B", "quantity": 1, "category": 42},
        {"sku": "C", "quantity": 1, "category": "  "},
    ]
    data = OrderData.model_validate({"order_id": "o", "total": 1, "items": lines})

    history = purchases.paid({}, data, DAY0)

    assert history["categories"] == {}
    assert sorted(history["skus"]) == ["A", "B", "C"]


def test_two_histories_of_one_person_combine_by_sku_and_category() -> None:
    later = DAY0 + timedelta(days=9)
    mine = purchases.paid({}, order(("WASH", 2, "洁面"), ("TONER", 1, None)), later)
    theirs = purchases.paid({}, order(("WASH", 1, None), ("MASK", 3, "面膜")), DAY0)
    theirs = purchases.refunded(theirs, order(("WASH", 1, None)))
    before = copy.deepcopy((mine, theirs))

    products, categories = purchases.views(purchases.combined(mine, theirs), later)

    assert (mine, theirs) == before  # neither is changed in place
    wash = products["WASH"]
    assert (wash.orders, wash.quantity, wash.refunded) == (2, 2, 1)
    assert (wash.first_bought_at, wash.last_bought_at, wash.category) == (DAY0, later, "洁面")
    assert sorted(products) == ["MASK", "TONER", "WASH"]
    assert (categories["面膜"].quantity, categories["洁面"].quantity) == (3, 2)


def test_a_supply_runs_out_by_the_use_cycle_and_a_rebuy_adds_to_what_is_left() -> None:
    cycles = {"WASH": 25}
    history = purchases.paid({}, order(("WASH", 2, None), ("MASK", 1, None)), DAY0, cycles)
    rebuy = DAY0 + timedelta(days=30)  # 20 of the 50 days left
    history = purchases.paid(history, order(("WASH", 1, None)), rebuy, cycles)

    products, _ = purchases.views(history, rebuy)

    assert products["WASH"].runs_out_at == DAY0 + timedelta(days=75)
    assert products["WASH"].days_left == 45
    assert (products["MASK"].runs_out_at, products["MASK"].days_left) == (None, None)
    history = purchases.refunded(history, order(("WASH", 1, None)), cycles)
    assert purchases.views(history, rebuy)[0]["WASH"].runs_out_at == DAY0 + timedelta(days=50)
    later = DAY0 + timedelta(days=90)
    assert purchases.views(history, later)[0]["WASH"].days_left == 0


def test_a_supply_that_ran_out_starts_again_at_the_rebuy() -> None:
    cycles = {"WASH": 25}
    history = purchases.paid({}, order(("WASH", 1, None)), DAY0, cycles)
    rebuy = DAY0 + timedelta(days=40)
    history = purchases.paid(history, order(("WASH", 1, None)), rebuy, cycles)

    assert purchases.views(history, rebuy)[0]["WASH"].runs_out_at == rebuy + timedelta(days=25)
