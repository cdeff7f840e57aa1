"""Shopify's own sample resources (tests/fixtures/webhooks/shopify) → order notices."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from smr.inbound.webhooks import SOURCES, LineItem, PayloadError, SignatureError, WebhookRequest
from smr.inbound.webhooks.shopify import ShopifySource

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "webhooks" / "shopify"
SECRET = "shpss_0123456789abcdef"
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
SOURCE = ShopifySource()
DELIVERY = "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"


def fixture(name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((FIXTURES / name).read_bytes())
    return found


def signature(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def request(body: bytes | dict[str, Any], topic: str | None = "orders/paid") -> WebhookRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {
        "x-shopify-hmac-sha256": signature(raw),
        "x-shopify-webhook-id": DELIVERY,
        "x-shopify-shop-domain": "jsmith.myshopify.com",
        **({"x-shopify-topic": topic} if topic else {}),
    }
    return WebhookRequest(headers=sent, body=raw, received_at=NOW)


def errors_of(exc: pytest.ExceptionInfo[PayloadError]) -> list[str]:
    return [e["path"] for e in exc.value.errors]


def test_the_source_is_registered() -> None:
    assert isinstance(SOURCES["shopify"], ShopifySource)


# --- signature -----------------------------------------------------------------------------


def test_a_body_signed_with_the_secret_verifies() -> None:
    SOURCE.verify(request((FIXTURES / "order.json").read_bytes()), SECRET)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda r: WebhookRequest(r.headers, r.body + b" ", NOW), id="tampered-body"),
        pytest.param(
            lambda r: WebhookRequest(
                {**r.headers, "x-shopify-hmac-sha256": signature(r.body, "another secret")},
                r.body,
                NOW,
            ),
            id="wrong-secret",
        ),
        pytest.param(
            lambda r: WebhookRequest(
                {k: v for k, v in r.headers.items() if k != "x-shopify-hmac-sha256"}, r.body, NOW
            ),
            id="missing-header",
        ),
        pytest.param(
            lambda r: WebhookRequest(
                {**r.headers, "x-shopify-hmac-sha256": "not base64!"}, r.body, NOW
            ),
            id="garbage-header",
        ),
    ],
)
def test_a_body_not_signed_with_the_secret_is_refused(tamper: Any) -> None:
    signed = request((FIXTURES / "order.json").read_bytes())

    with pytest.raises(SignatureError):
        SOURCE.verify(tamper(signed), SECRET)


# --- payments ------------------------------------------------------------------------------

ORDER_ITEMS = [
    LineItem("IPOD2008GREEN", "IPod Nano - 8gb - green", 1, Decimal("199.00")),
    LineItem("IPOD2008RED", "IPod Nano - 8gb - red", 1, Decimal("199.00")),
    LineItem("IPOD2008BLACK", "IPod Nano - 8gb - black", 1, Decimal("199.00")),
]


def test_orders_paid_is_the_payment_of_the_order() -> None:
    (notice,) = SOURCE.translate(request(fixture("order.json"))).notices

    assert notice.key == "450789469:paid"
    assert notice.type == "order.paid"
    assert notice.order_id == "450789469"
    assert notice.occurred_at == datetime(2008, 1, 10, 16, 0, tzinfo=UTC)
    assert notice.total == Decimal("409.94")
    assert notice.currency == "USD"
    assert list(notice.items) == ORDER_ITEMS
    # The customer has no phone; the billing address's, 555-625-1199 in the US, is no number.
    assert notice.identities == {"shop_customer_id": "207119551"}
    assert notice.name == "Bob Norman"
    assert notice.extra == {
        "topic": "orders/paid",
        "delivery_id": DELIVERY,
        "shop_domain": "jsmith.myshopify.com",
        "email": "bob.norman@hostmail.com",
        "order_name": "#1001",
    }
    data = notice.data()
    assert data["skus"] == ["IPOD2008BLACK", "IPOD2008GREEN", "IPOD2008RED"]
    assert (data["order_id"], data["total"], data["currency"]) == ("450789469", 409.94, "USD")


def test_an_order_created_unpaid_is_ignored() -> None:
    # The sample order is "authorized": its payment comes later as orders/paid.
    translation = SOURCE.translate(request(fixture("order.json"), topic="orders/create"))

    assert translation.notices == ()
    assert translation.ignored is not None
    assert "authorized" in translation.ignored


def test_an_order_created_paid_is_the_same_payment_as_orders_paid() -> None:
    paid_at_once = {**fixture("order.json"), "financial_status": "paid"}

    (created,) = SOURCE.translate(request(paid_at_once, topic="orders/create")).notices
    (paid,) = SOURCE.translate(request(fixture("order.json"), topic="orders/paid")).notices

    assert created.key == paid.key == "450789469:paid"
    assert created.extra["topic"] == "orders/create"


def test_processed_at_is_when_the_order_was_paid() -> None:
    order = {**fixture("order.json"), "processed_at": "2008-01-10T11:05:00-05:00"}

    (notice,) = SOURCE.translate(request(order)).notices

    assert notice.occurred_at == datetime(2008, 1, 10, 16, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("change", "phone"),
    [
        (
            {"customer": {"id": 207119551, "phone": "+16136120707"}, "phone": "+557734881234"},
            "+16136120707",
        ),
        ({"customer": {"id": 207119551}, "phone": "+557734881234"}, "+557734881234"),
        ({"customer": {"id": 207119551, "phone": "138 0013 8000"}}, "13800138000"),
        (
            {
                "customer": {"id": 207119551, "phone": "555-555-SHIP"},
                "billing_address": {"phone": "613-612-0707", "country_code": "US"},
            },
            "+16136120707",
        ),
        ({"billing_address": {"phone": "021-12345678", "country_code": "CN"}}, "+862112345678"),
    ],
    ids=["customer", "order", "mainland-spaced", "free-text-skipped", "billing-in-its-country"],
)
def test_the_phone_is_the_customers_else_the_orders_else_the_billing_one(
    change: dict[str, Any], phone: str
) -> None:
    (notice,) = SOURCE.translate(request({**fixture("order.json"), **change})).notices

    assert notice.identities["phone"] == phone


def test_a_line_without_a_sku_is_known_by_its_variant_else_its_product() -> None:
    order = fixture("order.json")
    green, red, black = order["line_items"]
    green["sku"] = ""
    del red["sku"]
    black.update(sku=None, variant_id=None)

    (notice,) = SOURCE.translate(request(order)).notices

    assert [i.sku for i in notice.items] == [
        "variant:39072856",
        "variant:49148385",
        "product:632910392",
    ]


def test_an_order_naming_no_customer_is_ignored() -> None:
    order = {**fixture("order.json"), "customer": None, "billing_address": None}

    translation = SOURCE.translate(request(order))

    assert translation.notices == ()
    assert translation.ignored == "order 450789469 names no customer id or phone"


# --- refunds -------------------------------------------------------------------------------


def test_a_refund_is_keyed_by_its_id_and_names_no_customer() -> None:
    (notice,) = SOURCE.translate(request(fixture("refund.json"), topic="refunds/create")).notices

    assert notice.key == "450789469:refunded:509562969"
    assert notice.type == "order.refunded"
    assert notice.order_id == "450789469"
    assert notice.occurred_at == datetime(2023, 10, 3, 17, 19, 52, tzinfo=UTC)
    assert notice.total == Decimal("209.00")  # what the successful refund transaction moved
    assert notice.currency == "USD"
    assert list(notice.items) == [
        LineItem("IPOD2008BLACK", "IPod Nano - 8gb - black", 1, Decimal("199.00")),
        LineItem("IPOD2008GREEN", "IPod Nano - 8gb - green", 1, Decimal("199.00")),
    ]
    assert notice.identities == {}
    assert notice.extra == {
        "topic": "refunds/create",
        "delivery_id": DELIVERY,
        "shop_domain": "jsmith.myshopify.com",
        "refund_id": "509562969",
    }


def test_a_refund_without_a_successful_transaction_totals_its_lines() -> None:
    refund = fixture("refund.json")
    refund["transactions"][0]["status"] = "failure"

    (notice,) = SOURCE.translate(request(refund, topic="refunds/create")).notices

    assert notice.total == Decimal("195.66") + Decimal("195.67")
    assert notice.currency == "USD"  # from the lines' subtotal_set


def test_a_refund_counts_the_refunded_quantity_not_the_ordered_one() -> None:
    refund = fixture("refund.json")
    line = refund["refund_line_items"][0]
    line["line_item"]["quantity"] = 3
    line["quantity"] = 2

    (notice,) = SOURCE.translate(request(refund, topic="refunds/create")).notices

    assert notice.items[0].quantity == 2


def test_a_shipping_only_refund_has_no_items() -> None:
    body = fixture("refund_shipping_only.json")

    (notice,) = SOURCE.translate(request(body, topic="refunds/create")).notices

    assert notice.key == "450789469:refunded:929361465"
    assert (notice.total, notice.currency, list(notice.items)) == (Decimal("5.00"), "USD", [])


def test_a_refund_naming_no_currency_is_a_payload_error() -> None:
    refund = {**fixture("refund_shipping_only.json"), "transactions": []}

    with pytest.raises(PayloadError) as exc:
        SOURCE.translate(request(refund, topic="refunds/create"))

    assert errors_of(exc) == ["transactions"]


# --- what is acknowledged and ignored, and what is refused ---------------------------------


@pytest.mark.parametrize("topic", ["orders/cancelled", "orders/updated", "products/update"])
def test_other_topics_are_ignored_without_reading_the_body(topic: str) -> None:
    translation = SOURCE.translate(request(b"not even json", topic=topic))

    assert translation.notices == ()
    assert translation.ignored == f"the {topic} topic is not a payment or a refund"


def test_a_missing_topic_is_a_payload_error() -> None:
    with pytest.raises(PayloadError) as exc:
        SOURCE.translate(request(fixture("order.json"), topic=None))

    assert errors_of(exc) == ["X-Shopify-Topic"]


def test_malformed_json_is_a_payload_error() -> None:
    with pytest.raises(PayloadError) as exc:
        SOURCE.translate(request(b'{"id": 450789469,'))

    assert errors_of(exc) == ["(body)"]


@pytest.mark.parametrize(
    ("fixture_name", "topic", "change", "path"),
    [
        ("order.json", "orders/paid", lambda o: o.pop("id"), "id"),
        ("order.json", "orders/paid", lambda o: o.pop("currency"), "currency"),
        ("order.json", "orders/paid", lambda o: o.update(total_price="lots"), "total_price"),
        (
            "order.json",
            "orders/paid",
            lambda o: o.update(created_at="2008-01-10T11:00:00"),
            "created_at",
        ),
        (
            "order.json",
            "orders/paid",
            lambda o: o["line_items"][1].update(quantity="two"),
            "line_items[1].quantity",
        ),
        ("refund.json", "refunds/create", lambda r: r.pop("order_id"), "order_id"),
        (
            "refund.json",
            "refunds/create",
            lambda r: r["transactions"][0].pop("amount"),
            "transactions[0].amount",
        ),
        (
            "refund.json",
            "refunds/create",
            lambda r: r["refund_line_items"][0].pop("line_item"),
            "refund_line_items[0].line_item",
        ),
    ],
)
def test_missing_or_wrong_fields_are_payload_errors_with_their_path(
    fixture_name: str, topic: str, change: Any, path: str
) -> None:
    body = fixture(fixture_name)
    change(body)

    with pytest.raises(PayloadError) as exc:
        SOURCE.translate(request(body, topic=topic))

    assert path in errors_of(exc)


def test_a_body_that_is_not_an_object_is_a_payload_error() -> None:
    with pytest.raises(PayloadError) as exc:
        SOURCE.translate(request(b"[1, 2]"))

    assert errors_of(exc) == ["(body)"]
