"""The workload: the 20-playbook folder and ``order.paid`` events from a pool of customers.

Of the 20 playbooks exactly one (``bench-order-paid``: tag, then send on ``mock``/``service``)
matches the driven events; six more listen to ``order.paid`` with a condition that is always
false (they are evaluated), the rest listen to event types the bench never sends.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

MATCHING_PLAYBOOK = "bench-order-paid"
PLAYBOOK_COUNT = 20
SHANGHAI = timezone(timedelta(hours=8))

_MATCHING = f"""\
# The one playbook the driven order.paid events trigger.
id: {MATCHING_PLAYBOOK}
name: 下单感谢（基准）
mode: parallel
trigger:
  event: order.paid
steps:
  - tag: {{add: [已购]}}
  - send:
      channel: mock
      category: service
      text: "{{{{ contact.name or '亲' }}}}，感谢下单！订单 {{{{ event.data.order_id }}}}"
"""

# order.paid playbooks whose condition is false for every driven event (they are evaluated).
_FALSE_CONDITIONS = (
    "event.data.total > 1000000",
    "event.data.currency == 'USD'",
    "event.data.currency == 'JPY'",
    "event.data.total < 0",
    "contact.stats.orders > 1000000",
    "event.data.items | length > 50",
)

# Playbooks on events the bench never sends.
_OTHER_EVENTS = (
    ("order.refunded", None),
    ("order.shipped", None),
    ("order.created", None),
    ("cart.abandoned", None),
    ("contact.added", None),
    ("contact.updated", None),
    ("chat.message", ["价格", "多少钱"]),
    ("chat.message", ["退货", "退款"]),
    ("coupon.claimed", None),
    ("member.level_changed", None),
    ("review.posted", None),
    ("ticket.opened", None),
    ("form.submitted", None),
)


def _other_playbook(index: int, event: str, condition: str | None, keywords: Any) -> str:
    lines = [
        f"id: bench-other-{index:02d}",
        f"name: 其他规则 {index:02d}",
        "trigger:",
        f"  event: {event}",
    ]
    if condition is not None:
        lines.append(f'  if: "{condition}"')
    if keywords:
        lines.append(f"  keywords: [{', '.join(keywords)}]")
    lines += [
        "steps:",
        f"  - tag: {{add: [规则{index:02d}]}}",
        "  - send:",
        "      channel: mock",
        "      category: service",
        f"      text: \"{{{{ contact.name or '亲' }}}}，这是规则 {index:02d}。\"",
        "",
    ]
    return "\n".join(lines)


def write_playbooks(folder: Path) -> None:
    """20 playbooks, one of which matches the driven events, and a ``policies.yaml``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "policies.yaml").write_text("timezone: Asia/Shanghai\n", encoding="utf-8")
    (folder / f"{MATCHING_PLAYBOOK}.yaml").write_text(_MATCHING, encoding="utf-8")
    others: list[tuple[str, str | None, Any]] = [("order.paid", c, None) for c in _FALSE_CONDITIONS]
    others += [(event, None, keywords) for event, keywords in _OTHER_EVENTS]
    assert len(others) == PLAYBOOK_COUNT - 1
    for index, (event, condition, keywords) in enumerate(others, start=1):
        text = _other_playbook(index, event, condition, keywords)
        (folder / f"bench-other-{index:02d}.yaml").write_text(text, encoding="utf-8")


_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_GIVEN = ("伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "洋", "艳", "杰", "娟", "涛", "明", "超")
_PRODUCTS = (
    ("FACE-WASH", "洗面奶", 99),
    ("TONER-200", "爽肤水 200ml", 159),
    ("SERUM-30", "精华液 30ml", 329),
    ("CREAM-50", "面霜 50g", 259),
    ("MASK-10", "面膜 10 片", 129),
    ("SUNSCREEN", "防晒霜", 189),
    ("LIP-BALM", "润唇膏", 49),
    ("GIFT-BOX", "礼盒装", 599),
)


class EventFactory:
    """``order.paid`` events with unique ids from a fixed pool of customers."""

    def __init__(self, *, run: str, contacts: int, seed: int) -> None:
        self._random = random.Random(seed)
        self._run = run
        self._serial = 0
        self._customers = [
            (
                f"13{self._random.randint(0, 9)}{n:08d}",
                self._random.choice(_SURNAMES) + self._random.choice(_GIVEN),
            )
            for n in self._random.sample(range(100_000_000), contacts)
        ]
        self._start = datetime.now(UTC).astimezone(SHANGHAI).replace(microsecond=0)

    def event(self) -> dict[str, Any]:
        self._serial += 1
        rnd = self._random
        phone, name = rnd.choice(self._customers)
        lines = [
            (product, rnd.randint(1, 3)) for product in rnd.sample(_PRODUCTS, rnd.randint(1, 3))
        ]
        items = [
            {"sku": sku, "name": title, "quantity": quantity, "price": price}
            for (sku, title, price), quantity in lines
        ]
        occurred = self._start - timedelta(seconds=rnd.randint(0, 3600))
        return {
            "id": f"{self._run}-{self._serial:07d}",
            "type": "order.paid",
            "occurred_at": occurred.isoformat(),
            "contact": {"phone": phone, "name": name},
            "data": {
                "order_id": f"SO{self._run[-6:].upper()}{self._serial:07d}",
                "total": sum(price * quantity for (_, _, price), quantity in lines),
                "currency": "CNY",
                "items": items,
            },
        }

    def singles(self, count: int) -> list[bytes]:
        return [encode(self.event()) for _ in range(count)]

    def batches(self, count: int, size: int) -> list[bytes]:
        return [encode({"events": [self.event() for _ in range(size)]}) for _ in range(count)]


def encode(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
