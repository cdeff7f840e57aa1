"""Youzan pushes (tests/fixtures/webhooks/youzan, from Youzan's docs) → order notices."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, unquote_plus

import pytest

from smr.inbound.webhooks import SOURCES, LineItem, PayloadError, SignatureError, WebhookRequest
from smr.inbound.webhooks.youzan import ACK, YouzanSource

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "webhooks" / "youzan"
SECRET = "4f9a1c0b7e2d6a83"  # the app's client_secret
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
SOURCE = YouzanSource()
PAID_TID = "E20210604153031018604175"
REFUND_TID = "E20211123144258072900153"


def fixture(name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((FIXTURES / name).read_bytes())
    return found


def md5(text: bytes) -> str:
    return hashlib.md5(text).hexdigest()  # noqa: S324 - Youzan's scheme


def encode(msg: dict[str, Any]) -> str:
    return quote_plus(json.dumps(msg, ensure_ascii=False, separators=(",", ":")))


def msg_of(push: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(unquote_plus(push["msg"]))
    return found


def raw(push: dict[str, Any] | bytes) -> bytes:
    return push if isinstance(push, bytes) else json.dumps(push, ensure_ascii=False).encode()


def header_signed(push: dict[str, Any] | bytes, secret: str = SECRET) -> WebhookRequest:
    """Signed the current way: Event-Sign = md5(client_id + body + client_secret)."""
    body = raw(push)
    client_id = json.loads(body).get("client_id", "50535be20334f52771")
    headers = {
        "event-sign": md5(client_id.encode() + body + secret.encode()),
        "client-id": client_id,
        "event-type": json.loads(body).get("type", ""),
    }
    return WebhookRequest(headers=headers, body=body, received_at=NOW)


def body_signed(push: dict[str, Any], secret: str = SECRET) -> WebhookRequest:
    """Signed the older way: the body's sign = md5(client_id + msg + client_secret)."""
    signed = {**push, "sign": md5((push["client_id"] + push["msg"] + secret).encode())}
    return WebhookRequest(headers={}, body=raw(signed), received_at=NOW)


def unsigned(push: dict[str, Any] | bytes, **headers: str) -> WebhookRequest:
    return WebhookRequest(headers=headers, body=raw(push), received_at=NOW)


def errors_of(exc: pytest.ExceptionInfo[PayloadError]) -> list[str]:
    return [e["path"] for e in exc.value.errors]


def test_the_source_is_registered_and_answers_what_youzan_expects() -> None:
    assert isinstance(SOURCES["youzan"], YouzanSource)
    assert ACK == {"code": 0, "msg": "success"}


# --- signature -----------------------------------------------------------------------------


def test_a_push_with_a_good_event_sign_header_verifies() -> None:
    SOURCE.verify(header_signed(fixture("trade_buyer_pay.json")), SECRET)


def test_event_sign_takes_the_client_id_from_the_body_without_the_header() -> None:
    signed = header_signed(fixture("trade_refund_success.json"))
    headers = {k: v for k, v in signed.headers.items() if k != "client-id"}

    SOURCE.verify(WebhookRequest(headers, signed.body, NOW), SECRET)


def test_event_sign_in_capitals_verifies() -> None:
    signed = header_signed(fixture("trade_buyer_pay.json"))
    headers = {**signed.headers, "event-sign": signed.headers["event-sign"].upper()}

    SOURCE.verify(WebhookRequest(headers, signed.body, NOW), SECRET)


def test_a_push_with_a_good_body_sign_verifies() -> None:
    SOURCE.verify(body_signed(fixture("trade_buyer_pay.json")), SECRET)


def _tampered_body(r: WebhookRequest) -> WebhookRequest:
    return WebhookRequest(r.headers, r.body.replace(b"63077", b"63078"), NOW)


@pytest.mark.parametrize(
    ("signed", "tamper"),
    [
        pytest.param(header_signed, _tampered_body, id="event-sign-tampered-body"),
        pytest.param(
            lambda p: header_signed(p, "another secret"), lambda r: r, id="event-sign-wrong-secret"
        ),
        pytest.param(
            header_signed,
            lambda r: WebhookRequest({**r.headers, "client-id": "cc939cb8063622a84d"}, r.body, NOW),
            id="event-sign-other-client-id",
        ),
        pytest.param(
            body_signed,
            lambda r: WebhookRequest(r.headers, r.body.replace(b"%7B", b"%7B%20", 1), NOW),
            id="body-sign-tampered-msg",
        ),
        pytest.param(
            lambda p: body_signed(p, "another secret"), lambda r: r, id="body-sign-wrong-secret"
        ),
        pytest.param(
            body_signed,
            lambda r: WebhookRequest({"event-sign": "0" * 32}, r.body, NOW),
            id="a-wrong-event-sign-decides-over-a-good-body-sign",
        ),
    ],
)
def test_a_push_not_signed_with_the_client_secret_is_refused(signed: Any, tamper: Any) -> None:
    request = tamper(signed(fixture("trade_buyer_pay.json")))

    with pytest.raises(SignatureError):
        SOURCE.verify(request, SECRET)


def test_the_older_body_sign_covers_msg_alone() -> None:
    # Youzan's older scheme leaves the envelope (kdt_id, type, …) outside the signature.
    SOURCE.verify(_tampered_body(body_signed(fixture("trade_buyer_pay.json"))), SECRET)


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param(
            unsigned({k: v for k, v in fixture("trade_buyer_pay.json").items() if k != "sign"}),
            id="no-header-no-sign",
        ),
        pytest.param(unsigned(b"not json"), id="no-header-not-json"),
        pytest.param(
            unsigned(fixture("trade_buyer_pay.json"), **{"event-sign": ""}), id="empty-header"
        ),
        pytest.param(
            unsigned(b"not json", **{"event-sign": "0" * 32}), id="event-sign-without-client-id"
        ),
    ],
)
def test_a_push_without_a_signature_is_refused(request_: WebhookRequest) -> None:
    with pytest.raises(SignatureError):
        SOURCE.verify(request_, SECRET)


# --- payments ------------------------------------------------------------------------------


def test_a_buyer_pay_push_is_the_payment_of_the_trade() -> None:
    (notice,) = SOURCE.translate(header_signed(fixture("trade_buyer_pay.json"))).notices

    assert notice.key == f"{PAID_TID}:paid"
    assert notice.type == "order.paid"
    assert notice.order_id == PAID_TID
    assert notice.occurred_at == datetime(2019, 8, 20, 11, 9, 37, tzinfo=UTC)  # pay_time, +08:00
    assert notice.total == Decimal("1.01")
    assert notice.currency == "CNY"
    assert list(notice.items) == [LineItem("spbm001", "测试商品1", 2, Decimal("1.00"))]
    assert notice.identities == {
        "shop_customer_id": "LnhGm4rh576452722916618240",
        "phone": "13700000000",
    }
    assert notice.name == "赞宝"
    assert notice.extra == {
        "topic": "trade_TradeBuyerPay",
        "delivery_id": "a1d466ad-f9db-4a58-b805-f2a4dd65fa56",
        "kdt_id": "63077",
    }
    assert notice.data()["skus"] == ["spbm001"]


def test_trade_paid_and_buyer_pay_report_one_payment() -> None:
    push = {**fixture("trade_buyer_pay.json"), "type": "trade_TradePaid", "status": "TRADE_PAID"}

    (paid,) = SOURCE.translate(header_signed(push)).notices
    (buyer_pay,) = SOURCE.translate(header_signed(fixture("trade_buyer_pay.json"))).notices

    assert paid.key == buyer_pay.key == f"{PAID_TID}:paid"


def test_the_type_may_come_from_the_event_type_header_alone() -> None:
    push = fixture("trade_buyer_pay.json")
    del push["type"]

    (notice,) = SOURCE.translate(unsigned(push, **{"event-type": "trade_TradePaid"})).notices

    assert notice.key == f"{PAID_TID}:paid"


def with_msg(push: dict[str, Any], change: Any) -> dict[str, Any]:
    msg = msg_of(push)
    change(msg)
    return {**push, "msg": encode(msg)}


def test_the_buyer_id_falls_back_from_yz_open_id_to_buyer_id_to_fans_id() -> None:
    def drop_open_id(msg: dict[str, Any]) -> None:
        buyer = msg["full_order_info"]["buyer_info"]
        buyer.update(yz_open_id="", buyer_id=0)

    push = with_msg(fixture("trade_buyer_pay.json"), drop_open_id)

    (notice,) = SOURCE.translate(unsigned(push)).notices

    assert notice.identities["shop_customer_id"] == "3303656575"  # fans_id


def test_encrypted_personal_fields_name_no_one() -> None:
    def encrypt(msg: dict[str, Any]) -> None:
        info = msg["full_order_info"]
        info["buyer_info"].update(
            buyer_phone="$eTS8t8hAECdXKgNtV6DIfw==$1$", fans_nickname="$v4+Ng$1$"
        )
        info["address_info"].update(receiver_tel="$eTS8t8hAECdXKgNtV6DIfw==$1$")

    (notice,) = SOURCE.translate(
        unsigned(with_msg(fixture("trade_buyer_pay.json"), encrypt))
    ).notices

    assert notice.identities == {"shop_customer_id": "LnhGm4rh576452722916618240"}
    assert notice.name == "赞宝"  # the receiver's name, in clear


def test_a_payment_naming_no_buyer_is_ignored() -> None:
    def anonymous(msg: dict[str, Any]) -> None:
        msg["full_order_info"]["buyer_info"] = {}
        msg["full_order_info"]["address_info"] = {}

    translation = SOURCE.translate(unsigned(with_msg(fixture("trade_buyer_pay.json"), anonymous)))

    assert translation.notices == ()
    assert translation.ignored == f"order {PAID_TID} names no buyer id or phone"


@pytest.mark.parametrize(
    ("line", "sku"),
    [
        ({"outer_sku_id": "", "outer_item_id": "spbm001"}, "spbm001"),
        ({"outer_sku_id": "", "outer_item_id": ""}, "sku:400818034"),
        ({"outer_sku_id": "", "outer_item_id": "", "sku_id": 0}, "item:500818021"),
    ],
    ids=["item-code", "spec-id", "item-id"],
)
def test_a_line_without_the_merchants_spec_code_falls_back(line: dict[str, Any], sku: str) -> None:
    push = with_msg(
        fixture("trade_buyer_pay.json"), lambda m: m["full_order_info"]["orders"][0].update(line)
    )

    (notice,) = SOURCE.translate(unsigned(push)).notices

    assert notice.items[0].sku == sku


def test_without_a_pay_time_the_update_time_is_when_it_was_paid() -> None:
    push = with_msg(
        fixture("trade_buyer_pay.json"),
        lambda m: m["full_order_info"]["order_info"].update(pay_time=""),
    )

    (notice,) = SOURCE.translate(unsigned(push)).notices

    assert notice.occurred_at == datetime(2019, 8, 20, 2, 19, 52, tzinfo=UTC)


# --- refunds -------------------------------------------------------------------------------


def test_a_refund_success_push_is_keyed_by_its_refund_id_and_names_no_buyer() -> None:
    (notice,) = SOURCE.translate(header_signed(fixture("trade_refund_success.json"))).notices

    assert notice.key == f"{REFUND_TID}:refunded:201907042058500000031002"
    assert notice.type == "order.refunded"
    assert notice.order_id == REFUND_TID
    assert notice.occurred_at == datetime(2016, 12, 31, 16, 0, 1, tzinfo=UTC)
    assert (notice.total, notice.currency, list(notice.items)) == (Decimal("0.01"), "CNY", [])
    assert notice.identities == {}
    assert notice.extra == {
        "topic": "trade_refund_RefundSuccess",
        "kdt_id": "98523",
        "refund_id": "201907042058500000031002",
        "refund_type": "REFUND_ONLY",
    }


@pytest.mark.parametrize("kind", ["trade_refund_RefundSellerAgree", "youzan_trade_RefundSuccess"])
def test_every_message_ending_a_refund_is_the_same_refund(kind: str) -> None:
    push = fixture("trade_refund_success.json")
    # youzan_trade_Refund* carry msg as an object, the older ones as a URL-encoded string.
    msg: Any = msg_of(push) if kind.startswith("youzan_") else push["msg"]

    (notice,) = SOURCE.translate(unsigned({**push, "type": kind, "msg": msg})).notices

    assert notice.key == f"{REFUND_TID}:refunded:201907042058500000031002"
    assert notice.total == Decimal("0.01")


# --- what is acknowledged and ignored, and what is refused ---------------------------------


def test_a_test_push_is_ignored() -> None:
    translation = SOURCE.translate(unsigned({**fixture("trade_buyer_pay.json"), "test": True}))

    assert translation.notices == ()
    assert translation.ignored == "a Youzan test push (trade_TradeBuyerPay)"


@pytest.mark.parametrize(
    "push",
    [
        fixture("trade_order_state_doc.json"),
        {
            **fixture("trade_buyer_pay.json"),
            "type": "trade_TradeCreate",
            "status": "WAIT_BUYER_PAY",
        },
        {**fixture("trade_refund_success.json"), "type": "trade_refund_BuyerCreated"},
    ],
    ids=["doc-sample-trade-order-state", "trade-create", "refund-requested"],
)
def test_other_messages_are_ignored(push: dict[str, Any]) -> None:
    translation = SOURCE.translate(unsigned(push))

    assert translation.notices == ()
    assert translation.ignored == f"the {push['type']} message is not a payment or a refund"


def test_malformed_json_is_a_payload_error() -> None:
    with pytest.raises(PayloadError) as exc:
        SOURCE.translate(unsigned(b'{"type": "trade_TradePaid",'))

    assert errors_of(exc) == ["(body)"]


def test_a_msg_that_is_not_json_is_a_payload_error() -> None:
    push = {**fixture("trade_buyer_pay.json"), "msg": "%7B%22tid%22%3A"}

    with pytest.raises(PayloadError) as exc:
        SOURCE.translate(unsigned(push))

    assert errors_of(exc) == ["msg"]


@pytest.mark.parametrize(
    ("name", "change", "path"),
    [
        (
            "trade_buyer_pay.json",
            lambda m: m["full_order_info"]["order_info"].pop("tid"),
            "msg.full_order_info.order_info.tid",
        ),
        (
            "trade_buyer_pay.json",
            lambda m: m["full_order_info"]["pay_info"].pop("payment"),
            "msg.full_order_info.pay_info.payment",
        ),
        (
            "trade_buyer_pay.json",
            lambda m: m["full_order_info"]["orders"][0].update(num="two"),
            "msg.full_order_info.orders[0].num",
        ),
        (
            "trade_buyer_pay.json",
            lambda m: m["full_order_info"]["order_info"].update(pay_time="yesterday"),
            "msg.full_order_info.order_info.pay_time",
        ),
        ("trade_refund_success.json", lambda m: m.pop("refund_id"), "msg.refund_id"),
        ("trade_refund_success.json", lambda m: m.update(refunded_fee="-1"), "msg.refunded_fee"),
    ],
)
def test_missing_or_wrong_fields_are_payload_errors_with_their_path(
    name: str, change: Any, path: str
) -> None:
    push = with_msg(fixture(name), change)

    with pytest.raises(PayloadError) as exc:
        SOURCE.translate(unsigned(push))

    assert path in errors_of(exc)


def test_a_payment_without_msg_is_a_payload_error() -> None:
    push = {k: v for k, v in fixture("trade_buyer_pay.json").items() if k != "msg"}

    with pytest.raises(PayloadError) as exc:
        SOURCE.translate(unsigned(push))

    assert errors_of(exc) == ["msg"]
