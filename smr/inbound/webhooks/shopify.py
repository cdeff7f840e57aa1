"""``shopify``: Shopify's order webhooks (JSON).

Signed ``X-Shopify-Hmac-Sha256: base64(HMAC-SHA256(secret, raw body))`` with the app's client
secret (or the key the admin shows for webhooks made there). ``X-Shopify-Topic`` says what
happened; the body is the bare order or refund resource:

- ``orders/paid``: the order is paid;
- ``orders/create``: the same, but only when the order was paid at once (``financial_status``
  ``paid``); an order created unpaid is acknowledged and ignored, its payment comes as
  ``orders/paid``;
- ``refunds/create``: a refund; its amount is what the successful refund transactions moved,
  else the refunded lines' subtotals. A refund does not repeat the customer: its contact is
  the one the order's payment was recorded for.

Any other topic is acknowledged and ignored. A payment is keyed ``<order id>:paid`` whichever
topic reports it, a refund ``<order id>:refunded:<refund id>``. ``X-Shopify-Webhook-Id`` (the
delivery, the same on every retry) and the topic go into the event's data.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field

from smr import phones
from smr.inbound.webhooks.base import (
    PLAIN_200,
    LineItem,
    OrderNotice,
    PayloadError,
    SignatureError,
    Translation,
    WebhookRequest,
    first_phone,
    hmac_sha256,
    payment_key,
    read_model,
    same,
)
from smr.schemas import Key, aware

SIGNATURE_HEADER = "X-Shopify-Hmac-Sha256"
TOPIC_HEADER = "X-Shopify-Topic"
DELIVERY_HEADER = "X-Shopify-Webhook-Id"
SHOP_HEADER = "X-Shopify-Shop-Domain"
PAID, CREATED, REFUNDED = "orders/paid", "orders/create", "refunds/create"


def sign(secret: str, body: bytes) -> str:
    """The header value Shopify sends with ``body``."""
    return base64.b64encode(hmac_sha256(secret, body)).decode()


def _id_text(value: object) -> object:
    # Shopify's ids are JSON integers (past float precision; json keeps them exact).
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


ShopifyId = Annotated[Key, BeforeValidator(_id_text)]
Aware = Annotated[datetime, AfterValidator(aware)]
Currency = Annotated[str, Field(min_length=3, max_length=3)]


class Customer(BaseModel):
    id: ShopifyId | None = None
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None

    def name(self) -> str | None:
        return " ".join(part for part in (self.first_name, self.last_name) if part) or None


class Address(BaseModel):
    phone: str | None = None
    country_code: str | None = None

    def dialable(self) -> str | None:
        """The phone read in the address's country (Shopify keeps it as the buyer typed it:
        ``555-625-1199`` in the US is not a mainland fixed line); None if it is no number."""
        return phones.read_in(self.phone, self.country_code)


class ShopifyLine(BaseModel):
    id: ShopifyId
    sku: str | None = None
    name: str | None = None
    title: str | None = None
    quantity: int = Field(ge=0)
    price: Decimal | None = None
    variant_id: ShopifyId | None = None
    product_id: ShopifyId | None = None

    def code(self) -> str:
        """The SKU; a line without one (a custom item, a variant the shop never coded) is
        known by its variant, else its product, else itself, prefixed so that it cannot be
        taken for a SKU."""
        if self.sku and self.sku.strip():
            return self.sku.strip()
        if self.variant_id:
            return f"variant:{self.variant_id}"
        return f"product:{self.product_id}" if self.product_id else f"line:{self.id}"

    def item(self, quantity: int) -> LineItem:
        return LineItem(self.code(), self.name or self.title, quantity, self.price)


class ShopifyOrder(BaseModel):
    id: ShopifyId
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    currency: Currency
    total_price: Decimal = Field(ge=0)
    financial_status: str | None = None
    created_at: Aware
    processed_at: Aware | None = None
    customer: Customer | None = None
    billing_address: Address | None = None
    line_items: list[ShopifyLine] = Field(default_factory=list)


class Money(BaseModel):
    amount: Decimal
    currency_code: Currency


class MoneySet(BaseModel):
    shop_money: Money


class RefundLine(BaseModel):
    quantity: int = Field(ge=0)
    subtotal: Decimal | None = None
    subtotal_set: MoneySet | None = None
    line_item: ShopifyLine


class Transaction(BaseModel):
    kind: str | None = None
    status: str | None = None
    amount: Decimal
    currency: Currency | None = None


class ShopifyRefund(BaseModel):
    id: ShopifyId
    order_id: ShopifyId
    created_at: Aware
    processed_at: Aware | None = None
    refund_line_items: list[RefundLine] = Field(default_factory=list)
    transactions: list[Transaction] = Field(default_factory=list)

    def total(self) -> Decimal:
        moved = [
            t.amount for t in self.transactions if t.kind == "refund" and t.status == "success"
        ]
        if moved:
            return sum(moved, Decimal(0))
        return sum((line.subtotal or Decimal(0) for line in self.refund_line_items), Decimal(0))

    def currency(self) -> str:
        found = [t.currency for t in self.transactions if t.currency] + [
            line.subtotal_set.shop_money.currency_code
            for line in self.refund_line_items
            if line.subtotal_set
        ]
        if not found:
            message = "names no currency (no transaction currency nor line subtotal_set)"
            raise PayloadError(
                "The refund names no currency.",
                errors=[{"path": "transactions", "message": message}],
            )
        return found[0]


class ShopifySource:
    name: ClassVar[str] = "shopify"
    acknowledgement: ClassVar[Mapping[str, object]] = PLAIN_200

    def verify(self, request: WebhookRequest, secret: str) -> None:
        given = request.require_header(SIGNATURE_HEADER)
        if not same(sign(secret, request.body), given):
            raise SignatureError(f"{SIGNATURE_HEADER} does not verify.")

    def translate(self, request: WebhookRequest) -> Translation:
        topic = request.header(TOPIC_HEADER)
        if not topic:
            raise PayloadError(
                f"The {TOPIC_HEADER} header is missing.",
                errors=[{"path": TOPIC_HEADER, "message": "missing"}],
            )
        if topic not in (PAID, CREATED, REFUNDED):
            return Translation(ignored=f"the {topic} topic is not a payment or a refund")
        body: Any = request.data()
        if topic == REFUNDED:
            return Translation(notices=(self._refund(read_model(ShopifyRefund, body), request),))
        order = read_model(ShopifyOrder, body)
        if topic == CREATED and order.financial_status != "paid":
            status = order.financial_status or "without a financial status"
            return Translation(ignored=f"order {order.id} was created {status}; not paid yet")
        notice = self._payment(order, request, topic)
        if not notice.identities:
            return Translation(ignored=f"order {order.id} names no customer id or phone")
        return Translation(notices=(notice,))

    def _payment(self, order: ShopifyOrder, request: WebhookRequest, topic: str) -> OrderNotice:
        customer = order.customer or Customer()
        billing = order.billing_address or Address()
        identities = {
            "shop_customer_id": customer.id,
            "phone": first_phone(customer.phone, order.phone, billing.dialable()),
        }
        extra = {"email": order.email or customer.email, "order_name": order.name}
        return OrderNotice(
            key=payment_key(order.id),
            type="order.paid",
            occurred_at=order.processed_at or order.created_at,
            order_id=order.id,
            total=order.total_price,
            currency=order.currency,
            items=[line.item(line.quantity) for line in order.line_items],
            identities={kind: value for kind, value in identities.items() if value},
            name=customer.name(),
            extra=_extra(request, topic, extra),
        )

    def _refund(self, refund: ShopifyRefund, request: WebhookRequest) -> OrderNotice:
        return OrderNotice(
            key=f"{refund.order_id}:refunded:{refund.id}",
            type="order.refunded",
            occurred_at=refund.processed_at or refund.created_at,
            order_id=refund.order_id,
            total=refund.total(),
            currency=refund.currency(),
            items=[line.line_item.item(line.quantity) for line in refund.refund_line_items],
            extra=_extra(request, REFUNDED, {"refund_id": refund.id}),
        )


def _extra(request: WebhookRequest, topic: str, more: dict[str, str | None]) -> dict[str, str]:
    found = {
        "topic": topic,
        "delivery_id": request.header(DELIVERY_HEADER),
        "shop_domain": request.header(SHOP_HEADER),
        **more,
    }
    return {key: value for key, value in found.items() if value}
