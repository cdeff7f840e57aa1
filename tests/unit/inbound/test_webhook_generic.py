"""SMR's own ``generic`` order webhook: its signature and its body."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from smr.inbound.webhooks import SOURCES, LineItem, PayloadError, SignatureError, WebhookRequest
from smr.inbound.webhooks.generic import GenericSource

SECRET = "whsec_current"
OLD_SECRET = "whsec_previous"
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
SOURCE = GenericSource()
ORDER: dict[str, Any] = {
    "order_id": "A1001",
    "status": "paid",
    "occurred_at": "2026-11-23T10:00:00+08:00",
    "customer": {"id": "C42", "phone": "138 0013 8000", "email": "li@example.com", "name": "李雷"},
    "items": [{"sku": "FACE-WASH", "name": "洗面奶", "quantity": 2, "price": 99}],
    "total": 198.0,
    "currency": "CNY",
}


def v1(body: bytes, stamp: int, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()


def request(
    body: dict[str, Any] | bytes = ORDER, *, header: str | None = None, sent: datetime = NOW
) -> WebhookRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    stamp = int(sent.timestamp())
    value = f"t={stamp},v1={v1(raw, stamp)}" if header is None else header
    return WebhookRequest(headers={"x-smr-signature": value}, body=raw, received_at=NOW)


def errors_of(exc: pytest.ExceptionInfo[PayloadError]) -> list[str]:
    return [e["path"] for e in exc.value.errors]


def test_the_source_is_registered() -> None:
    assert isinstance(SOURCES["generic"], GenericSource)


# --- signature -----------------------------------------------------------------------------


@pytest.mark.parametrize("skew", [timedelta(0), timedelta(minutes=-5), timedelta(minutes=5)])
def test_a_body_signed_within_five_minutes_verifies(skew: timedelta) -> None:
    SOURCE.verify(request(sent=NOW + skew), SECRET)


@pytest.mark.parametrize(
    "skew", [timedelta(minutes=-5, seconds=-1), timedelta(minutes=5, seconds=1)], ids=["old", "new"]
)
def test_a_stamp_more_than_five_minutes_away_is_refused_as_a_replay(skew: timedelta) -> None:
    with pytest.raises(SignatureError, match="5 minutes"):
        SOURCE.verify(request(sent=NOW + skew), SECRET)


def test_a_stamp_past_any_date_is_refused_not_a_crash() -> None:
    stamp = 10**20
    header = f"t={stamp},v1={v1(json.dumps(ORDER).encode(), stamp)}"

    with pytest.raises(SignatureError):
        SOURCE.verify(request(header=header), SECRET)


@pytest.mark.parametrize("signing", [SECRET, OLD_SECRET], ids=["new-secret", "old-secret"])
def test_while_a_secret_is_rotated_either_v1_verifies(signing: str) -> None:
    body = json.dumps(ORDER).encode()
    stamp = int(NOW.timestamp())
    header = f"t={stamp},v1={v1(body, stamp, OLD_SECRET)},v1={v1(body, stamp, SECRET)}"

    SOURCE.verify(request(body, header=header), signing)


def test_signatures_compare_in_any_case() -> None:
    body = json.dumps(ORDER).encode()
    stamp = int(NOW.timestamp())

    SOURCE.verify(request(body, header=f"t={stamp},v1={v1(body, stamp).upper()}"), SECRET)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "v1=abcdef",
        "t=1795399200",
        "t=soon,v1=abcdef",
        "t=\xb2,v1=abcdef",
        "t=1795399200,v1=",
        "sha256=abcdef",
    ],
    ids=["empty", "no-t", "no-v1", "t-not-a-number", "t-unicode-digit", "v1-empty", "other-scheme"],
)
def test_a_malformed_header_is_refused(header: str) -> None:
    with pytest.raises(SignatureError):
        SOURCE.verify(request(header=header), SECRET)


def test_a_missing_header_is_refused() -> None:
    raw = json.dumps(ORDER).encode()

    with pytest.raises(SignatureError, match="missing"):
        SOURCE.verify(WebhookRequest(headers={}, body=raw, received_at=NOW), SECRET)


def test_a_tampered_body_or_another_secret_is_refused() -> None:
    signed = request()

    with pytest.raises(SignatureError):
        SOURCE.verify(WebhookRequest(signed.headers, signed.body + b" ", NOW), SECRET)
    with pytest.raises(SignatureError):
        SOURCE.verify(signed, OLD_SECRET)


# --- body ----------------------------------------------------------------------------------


def test_a_payment_is_keyed_by_its_order() -> None:
    (notice,) = SOURCE.translate(request()).notices

    assert notice.key == "A1001:paid"
    assert notice.type == "order.paid"
    assert notice.order_id == "A1001"
    assert notice.occurred_at == datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    assert (notice.total, notice.currency) == (Decimal("198.0"), "CNY")
    assert list(notice.items) == [LineItem("FACE-WASH", "洗面奶", 2, Decimal(99))]
    assert notice.identities == {"shop_customer_id": "C42", "phone": "13800138000"}
    assert notice.name == "李雷"
    assert notice.extra == {"email": "li@example.com"}


def test_a_refund_is_keyed_by_its_refund_id() -> None:
    body = {**ORDER, "status": "refunded", "refund_id": "R1", "total": 99}

    (notice,) = SOURCE.translate(request(body)).notices

    assert notice.key == "A1001:refunded:R1"
    assert notice.type == "order.refunded"
    assert notice.total == Decimal(99)


def test_a_refund_without_an_id_is_keyed_by_its_order() -> None:
    (notice,) = SOURCE.translate(request({**ORDER, "status": "refunded"})).notices

    assert notice.key == "A1001:refunded"


def test_a_customer_with_only_a_phone_is_enough() -> None:
    (notice,) = SOURCE.translate(request({**ORDER, "customer": {"phone": "+85291234567"}})).notices

    assert notice.identities == {"phone": "+85291234567"}
    assert notice.extra == {}


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"customer": {"email": "li@example.com", "name": "李雷"}}, "customer"),
        ({"customer": {"id": "C42", "phone": "call me"}}, "customer.phone"),
        ({"customer": {"id": "C42", "wechat": "lilei"}}, "customer.wechat"),
        ({"occurred_at": "2026-11-23T10:00:00"}, "occurred_at"),
        ({"status": "shipped"}, "status"),
        ({"total": -1}, "total"),
        ({"items": [{"name": "洗面奶"}]}, "items[0].sku"),
        ({"order_id": ""}, "order_id"),
    ],
    ids=[
        "customer-without-identity",
        "bad-phone",
        "unknown-customer-field",
        "naive-time",
        "status",
        "negative-total",
        "item-without-sku",
        "empty-order-id",
    ],
)
def test_a_body_that_does_not_validate_is_a_payload_error_with_its_path(
    change: dict[str, Any], path: str
) -> None:
    with pytest.raises(PayloadError) as exc:
        SOURCE.translate(request({**ORDER, **change}))

    assert errors_of(exc) == [path]


def test_a_missing_field_is_a_payload_error_with_its_path() -> None:
    body = {k: v for k, v in ORDER.items() if k != "customer"}

    with pytest.raises(PayloadError) as exc:
        SOURCE.translate(request(body))

    assert errors_of(exc) == ["customer"]


@pytest.mark.parametrize("raw", [b'{"order_id": "A1001",', b"\xff\xfe\x00", b"[" * 100_000])
def test_a_body_that_is_not_json_is_a_payload_error(raw: bytes) -> None:
    with pytest.raises(PayloadError) as exc:
        SOURCE.translate(request(raw))

    assert errors_of(exc) == ["(body)"]
