"""An import's historical orders: stored as processed events of source ``import`` (key
``paid:<order_id>``, so the same order imported again is the same event) and counted in their
customers' stats and purchase history, never a trigger."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from smr.eventlog import EventStatus
from smr.ids import new_id
from smr.importing import ImportedOrder
from smr.playbooks.policies import Policies
from smr.schemas import OrderData
from smr.services.contact_state import ContactState

SOURCE = "import"
#: What an imported order's event says in the run log instead of evaluations.
IMPORTED_NOTE = {"imported": True, "note": "historical order: counted, no playbook evaluated"}

#: A customer and one of their orders.
Owned = tuple[ContactState, ImportedOrder]


def event_row(order: ImportedOrder, state: ContactState, *, now: datetime) -> dict[str, Any]:
    """The order's event, processed already."""
    return {
        "id": new_id("ev", now),
        "source": SOURCE,
        "key": order.key,
        "type": order.event_type,
        "occurred_at": order.occurred_at,
        "occurred_at_source": "sent",
        "received_at": now,
        "contact_id": state.id,
        "contact": {"id": state.id},
        "data": order.data(),
        "evaluations": [IMPORTED_NOTE],
        "status": EventStatus.PROCESSED,
        "processed_at": now,
    }


def count(orders: Sequence[Owned], policies: Policies) -> None:
    """Count ``orders`` in their customers' stats and purchase history, in the order they
    happened."""
    for state, order in sorted(orders, key=lambda pair: pair[1].occurred_at):
        month = order.occurred_at.astimezone(policies.tz).strftime("%Y-%m")
        # Validated as an ImportedOrder already: the same fields, built without a second pass.
        data = OrderData.model_construct(
            order_id=order.order_id, total=order.total, currency=order.currency, items=order.items
        )
        state.apply_order(
            order.event_type,
            data,
            order.occurred_at,
            month=month,
            cycles=policies.use_cycle_days,
        )
        state.seen(order.event_type, order.occurred_at)
