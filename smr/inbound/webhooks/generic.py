"""``generic``: SMR's own order webhook, for shops without a vendor SMR speaks.

Body (JSON)::

    {"order_id": "A1001", "status": "paid" | "refunded", "occurred_at": "2026-11-23T10:00:00+08:00",
     "customer": {"id"?, "phone"?, "email"?, "name"?},
     "items": [{"sku", "name", "quantity", "price"}], "total": 198.0, "currency": "CNY",
     "refund_id"?: "R1"}

Signed ``X-SMR-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`` with the
source's secret; several ``v1=`` entries may be sent while a secret is rotated. A timestamp more
than five minutes from now is refused, so a captured request cannot be replayed later.

A payment is keyed by its order (``<order_id>:paid``), a refund by its refund id when given
(several partial refunds), else by its order.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from smr.inbound.webhooks.base import (
    PLAIN_200,
    LineItem,
    OrderNotice,
    OrderType,
    SignatureError,
    Translation,
    WebhookRequest,
    hmac_sha256,
    payload_error,
    payment_key,
    read_model,
    same,
)
from smr.schemas import ContactRef, Key, OrderItem, aware

HEADER = "X-SMR-Signature"
TOLERANCE = timedelta(minutes=5)


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The header value for ``body`` sent at ``timestamp`` (what a shop computes)."""
    return f"t={timestamp},v1={_mac(secret, body, timestamp)}"


def _mac(secret: str, body: bytes, timestamp: int) -> str:
    return hmac_sha256(secret, f"{timestamp}.".encode() + body).hex()


def _parts(header: str) -> tuple[int, list[str]]:
    stamp: int | None = None
    macs: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isascii() and value.isdigit():  # int("²") would raise
            stamp = int(value)
        elif name == "v1" and value:
            macs.append(value.lower())
    if stamp is None or not macs:
        raise SignatureError(f"{HEADER} must read t=<unix seconds>,v1=<hex HMAC-SHA256>.")
    return stamp, macs


class Customer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Key | None = None
    phone: str | None = None
    email: str | None = None
    name: str | None = None


class GenericOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: Key
    status: Literal["paid", "refunded"]
    occurred_at: Annotated[datetime, AfterValidator(aware)]
    customer: Customer
    items: list[OrderItem] = Field(default_factory=list)
    total: Decimal = Field(ge=0)
    currency: Annotated[str, Field(min_length=3, max_length=3)] = "CNY"
    refund_id: Key | None = None


class GenericSource:
    name: ClassVar[str] = "generic"
    acknowledgement: ClassVar[Mapping[str, object]] = PLAIN_200

    def verify(self, request: WebhookRequest, secret: str) -> None:
        stamp, macs = _parts(request.require_header(HEADER))
        # Compared as numbers: a stamp past datetime's range is stale, not a crash.
        if abs(request.received_at.timestamp() - stamp) > TOLERANCE.total_seconds():
            raise SignatureError(f"{HEADER} is more than 5 minutes from now; refused as a replay.")
        expected = _mac(secret, request.body, stamp)
        if not any(same(expected, mac) for mac in macs):
            raise SignatureError(f"{HEADER} does not verify.")

    def translate(self, request: WebhookRequest) -> Translation:
        body: Any = request.data()
        order = read_model(GenericOrder, body)
        try:
            customer = order.customer
            identities = ContactRef(shop_customer_id=customer.id, phone=customer.phone).identities()
        except ValidationError as exc:
            raise payload_error(exc, prefix=("customer",)) from None
        kind: OrderType = "order.paid" if order.status == "paid" else "order.refunded"
        if order.status == "paid":
            key = payment_key(order.order_id)
        else:
            key = f"{order.order_id}:refunded" + (f":{order.refund_id}" if order.refund_id else "")
        extra = {"email": order.customer.email} if order.customer.email else {}
        notice = OrderNotice(
            key=key,
            type=kind,
            occurred_at=order.occurred_at,
            order_id=order.order_id,
            total=order.total,
            currency=order.currency,
            items=[LineItem(i.sku, i.name, i.quantity, i.price) for i in order.items],
            identities=identities,
            name=order.customer.name,
            extra=extra,
        )
        return Translation(notices=(notice,))
