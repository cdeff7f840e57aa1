"""A contact's purchase history by SKU and by category, as orders and refunds arrive, and as
templates see it (``contact.products['FACE-WASH'].last_bought_at``, ``contact.categories``).

Stored on the contact (``contacts.purchases``) as JSON::

    {"skus": {"FACE-WASH": {"name", "category", "orders", "quantity", "refunded",
                            "first", "last"}},
     "categories": {"洁面": {"orders", "quantity", "refunded", "first", "last"}}}

``orders``: paid orders that held it; ``quantity``: units bought, net of refunds; ``refunded``:
units refunded; ``first`` / ``last``: when it was first and last bought (ISO time); for a SKU
whose use cycle is known (``vars.use_cycle_days``), ``runs_out``: when its supply runs out,
each purchase adding its units' days to what was left of the last one. A category
comes from an order item's ``category``, when the shop sends one. A contact keeps its
``MAX_SKUS`` most recently bought SKUs and ``MAX_CATEGORIES`` categories.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from smr.playbooks.context import Bought
from smr.schemas import OrderData, OrderItem

MAX_SKUS = 200
MAX_CATEGORIES = 100
#: The longest category name kept (a longer one is not a category, it is left out).
MAX_CATEGORY = 64

Purchases = dict[str, dict[str, dict[str, Any]]]
EMPTY: Mapping[str, float] = MappingProxyType({})


def paid(
    purchases: Purchases,
    order: OrderData,
    at: datetime,
    cycles: Mapping[str, float] = EMPTY,
) -> Purchases:
    """``purchases`` with a paid order counted (a new dict: the stored one is compared);
    ``cycles``: SKU → days a unit lasts, for the supply of those SKUs."""
    skus, categories = _units(order.items)
    first_line = {item.sku: item for item in reversed(order.items)}  # each SKU's first line
    when = at.isoformat()
    result = {
        "skus": {**purchases.get("skus", {})},
        "categories": {**purchases.get("categories", {})},
    }
    for sku, quantity in skus.items():
        item = first_line[sku]
        before = result["skus"].get(sku)
        record = _bought(before, quantity, when)
        if sku in cycles:
            record["runs_out"] = _supplied(before, at, days=cycles[sku] * quantity)
        if item.name:
            record["name"] = item.name
        if category := _category(item):
            record["category"] = category
        result["skus"][sku] = record
    for category, quantity in categories.items():
        result["categories"][category] = _bought(result["categories"].get(category), quantity, when)
    result["skus"] = _latest(result["skus"], MAX_SKUS)
    result["categories"] = _latest(result["categories"], MAX_CATEGORIES)
    return result


def refunded(
    purchases: Purchases, order: OrderData, cycles: Mapping[str, float] = EMPTY
) -> Purchases:
    """``purchases`` with a refund's items taken back (what was never counted is left), and
    their supply (``cycles``, as ``paid``) shortened, never to before the last purchase."""
    skus, categories = _units(order.items)
    result = {kind: dict(purchases.get(kind, {})) for kind in ("skus", "categories")}
    for kind, units in (("skus", skus), ("categories", categories)):
        for key, quantity in units.items():
            if key in result[kind]:
                record = dict(result[kind][key])
                taken = min(quantity, record["quantity"])
                record["quantity"] -= taken
                record["refunded"] += taken
                if kind == "skus" and key in cycles and "runs_out" in record:
                    record["runs_out"] = _shortened(record, days=cycles[key] * taken)
                result[kind][key] = record
    return result


def combined(purchases: Purchases, other: Purchases) -> Purchases:
    """Two histories of one person as one (a merge): each SKU's and category's counts added
    up, first and last bought the earliest and latest; names and categories from
    ``purchases`` first."""
    result: Purchases = {}
    for kind, most in (("skus", MAX_SKUS), ("categories", MAX_CATEGORIES)):
        records = dict(purchases.get(kind, {}))
        for key, theirs in other.get(kind, {}).items():
            mine = records.get(key)
            records[key] = theirs if mine is None else _added(mine, theirs)
        result[kind] = _latest(records, most)
    return result


def _added(mine: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    supplies = [r["runs_out"] for r in (mine, theirs) if "runs_out" in r]
    longest = {"runs_out": max(supplies, key=datetime.fromisoformat)} if supplies else {}
    return {
        **longest,
        **theirs,
        **mine,
        "orders": mine["orders"] + theirs["orders"],
        "quantity": mine["quantity"] + theirs["quantity"],
        "refunded": mine["refunded"] + theirs["refunded"],
        "first": min(mine["first"], theirs["first"], key=datetime.fromisoformat),
        "last": max(mine["last"], theirs["last"], key=datetime.fromisoformat),
    }


def views(purchases: Purchases, now: datetime) -> tuple[dict[str, Bought], dict[str, Bought]]:
    """``contact.products`` and ``contact.categories``."""
    return (
        {sku: _view(r, now) for sku, r in purchases.get("skus", {}).items()},
        {name: _view(r, now) for name, r in purchases.get("categories", {}).items()},
    )


def _units(items: list[OrderItem]) -> tuple[dict[str, int], dict[str, int]]:
    """Units of each SKU and each category in an order's items."""
    skus: dict[str, int] = defaultdict(int)
    categories: dict[str, int] = defaultdict(int)
    for item in items:
        skus[item.sku] += item.quantity
        if category := _category(item):
            categories[category] += item.quantity
    return skus, categories


def _category(item: OrderItem) -> str | None:
    category = (item.model_extra or {}).get("category")
    if isinstance(category, str) and 0 < len(category.strip()) <= MAX_CATEGORY:
        return category.strip()
    return None


def _bought(record: dict[str, Any] | None, quantity: int, when: str) -> dict[str, Any]:
    if record is None:
        return {"orders": 1, "quantity": quantity, "refunded": 0, "first": when, "last": when}
    return {
        **record,
        "orders": record["orders"] + 1,
        "quantity": record["quantity"] + quantity,
        "first": min(record["first"], when, key=datetime.fromisoformat),
        "last": max(record["last"], when, key=datetime.fromisoformat),
    }


def _supplied(before: dict[str, Any] | None, at: datetime, *, days: float) -> str:
    """When the supply runs out once ``days`` more are bought at ``at``: what is left of the
    last supply carries over."""
    left = datetime.fromisoformat(before["runs_out"]) if before and "runs_out" in before else at
    return (max(left, at) + timedelta(days=days)).isoformat()


def _shortened(record: dict[str, Any], *, days: float) -> str:
    runs_out = datetime.fromisoformat(record["runs_out"]) - timedelta(days=days)
    return max(runs_out, datetime.fromisoformat(record["last"])).isoformat()


def _latest(records: dict[str, dict[str, Any]], most: int) -> dict[str, dict[str, Any]]:
    if len(records) <= most:
        return records
    kept = sorted(records, key=lambda k: datetime.fromisoformat(records[k]["last"]))[-most:]
    return {key: records[key] for key in kept}


def _view(record: dict[str, Any], now: datetime) -> Bought:
    last = datetime.fromisoformat(record["last"])
    runs_out = datetime.fromisoformat(record["runs_out"]) if "runs_out" in record else None
    return Bought(
        orders=record["orders"],
        quantity=record["quantity"],
        refunded=record["refunded"],
        first_bought_at=datetime.fromisoformat(record["first"]),
        last_bought_at=last,
        days_since_last_bought=(now - last).days,
        name=record.get("name"),
        category=record.get("category"),
        runs_out_at=runs_out,
        days_left=max(0, (runs_out - now).days) if runs_out else None,
    )
