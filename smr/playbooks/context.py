"""Read-only views of a contact, an event and a run, as templates and the engine see them.

Callers build these from their rows; the engine never touches storage.

Customer groups: ``contact.groups`` lists the WeCom customer groups the contact is a member
of now (``GroupView``: chat_id, name, owner, tags), read with the contact. ``event.group`` is
the group a ``group.joined`` / ``group.left`` event is about, as stored when the event was
ingested (id, chat_id, name, owner, notice, status, tags, member_count): the WeCom callback
route puts it in the event's ``data.group``, so it is stored with the event and a later step
(``trigger.group``) and the run log see the same group; None when the event carries none.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from smr.playbooks.sandbox import template_view


@template_view
@dataclass(frozen=True)
class EventView:
    id: str
    type: str
    occurred_at: datetime
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def group(self) -> Mapping[str, Any] | None:
        """The customer group a group event is about (see the module docstring)."""
        group = self.data.get("group")
        return group if isinstance(group, dict) else None

    @property
    def skus(self) -> list[str]:
        if "skus" in self.data:
            return [str(sku) for sku in self.data["skus"]]
        return [str(item["sku"]) for item in self._items() if "sku" in item]

    def quantity_of(self, sku: str) -> int:
        return sum(_quantity(item) for item in self._items() if item.get("sku") == sku)

    def _items(self) -> list[dict[str, Any]]:
        items = self.data.get("items")
        if not isinstance(items, list):
            return []
        return [item for item in items if isinstance(item, dict)]


@template_view
@dataclass(frozen=True)
class ContactStats:
    orders: int = 0
    total_spent: Decimal | float = 0
    first_order_at: datetime | None = None
    last_order_at: datetime | None = None
    days_since_last_order: int | None = None
    spend_this_month: Decimal | float = 0
    spend_last_month: Decimal | float = 0
    monthly_spend: dict[str, Decimal] = field(default_factory=dict)


@template_view
@dataclass(frozen=True)
class Bought:
    """What a contact bought of one SKU (``contact.products``) or one category
    (``contact.categories``): paid orders that held it, units net of refunds, units refunded,
    when first and last bought."""

    orders: int
    quantity: int
    refunded: int
    first_bought_at: datetime
    last_bought_at: datetime
    days_since_last_bought: int
    name: str | None = None
    category: str | None = None
    #: When its supply runs out, and the whole days left until then (SKUs with a use cycle).
    runs_out_at: datetime | None = None
    days_left: int | None = None


@template_view
@dataclass(frozen=True)
class GroupView:
    """A WeCom customer group a contact is a member of."""

    chat_id: str
    name: str | None
    owner: str | None
    tags: list[str] = field(default_factory=list)


@template_view
@dataclass(frozen=True)
class ContactView:
    id: str
    name: str | None
    tags: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    identities: dict[str, str] = field(default_factory=dict)
    stats: ContactStats = field(default_factory=ContactStats)
    groups: list[GroupView] = field(default_factory=list)
    #: SKU → what the contact bought of it; category → likewise (``smr.services.purchases``).
    products: dict[str, Bought] = field(default_factory=dict)
    categories: dict[str, Bought] = field(default_factory=dict)
    #: When the contact was first known to SMR.
    added_at: datetime | None = None
    #: Marketing: channels opted out of ("*": all), channels consented to.
    opted_out: list[str] = field(default_factory=list)
    consented: list[str] = field(default_factory=list)
    #: When its latest event of any kind, and its latest chat message, happened.
    last_seen_at: datetime | None = None
    last_message_at: datetime | None = None
    #: The channels its identities reach (opt-outs aside: see ``opted_out``).
    channels: list[str] = field(default_factory=list)
    #: The segments it is in (``'钻粉' in contact.segments``).
    segments: list[str] = field(default_factory=list)


@template_view
@dataclass(frozen=True)
class RunView:
    id: str | int
    playbook_id: str
    started_at: datetime
    #: The item of ``trigger.each`` this run is for (none without ``each``).
    item: str | None = None


def build_context(
    *,
    contact: ContactView,
    event: EventView,
    trigger: EventView,
    run: RunView | None,
    now: datetime,
    vars: Mapping[str, Any],
) -> dict[str, Any]:
    """The names a template or condition may use (see ``expressions.CONTEXT_NAMES``)."""
    return {
        "contact": contact,
        "event": event,
        "trigger": trigger,
        "run": run,
        "now": now,
        "vars": dict(vars),
    }


def _quantity(item: Mapping[str, Any]) -> int:
    # Shops post quantities as numbers or numeric strings; anything else counts as one unit.
    try:
        return int(item.get("quantity", 1))
    except (TypeError, ValueError):
        return 1
