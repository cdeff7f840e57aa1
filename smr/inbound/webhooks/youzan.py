"""``youzan``: 有赞云 push messages (消息推送) about trades and refunds.

A push is a JSON POST::

    {"client_id", "kdt_id", "kdt_name", "id" (the order number for trade messages),
     "type" ("trade_TradePaid", …), "status", "msg", "msg_id", "version", "sendCount",
     "test", "mode", "sign"}

where ``msg`` is the message's own JSON, URL-encoded into a string for the ``trade_*``
messages and a plain object for the newer ``youzan_trade_Refund*`` ones.

Signature, md5 hex keyed with the app's ``client_secret`` (the source's secret), two
generations:

- header ``Event-Sign: md5(client_id + raw body + client_secret)``, with ``Client-Id`` and
  ``Event-Type`` beside it (the current guide, doc.youzanyun.com/resource/develop-guide/41355/
  41536); whenever ``Event-Sign`` is present it alone decides;
- else the body's ``sign: md5(client_id + msg + client_secret)``, over ``msg`` exactly as sent
  (older pushes; the docs now advise the header).

Messages: ``trade_TradePaid`` (paid) and ``trade_TradeBuyerPay`` (paid, now awaiting shipment)
report one payment, keyed ``<tid>:paid``; ``trade_refund_RefundSuccess``,
``trade_refund_RefundSellerAgree`` (the end of a refund-only request) and
``youzan_trade_RefundSuccess`` report a refund, keyed ``<tid>:refunded:<refund_id>``, so the
messages of one refund are one event. A refund does not repeat the buyer: its contact is the one
the payment was recorded for. Test pushes (``test: true``) and every other type are acknowledged
and ignored. Youzan counts a push delivered when the answer contains ``success`` (reply
:data:`ACK`) and retries otherwise.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Final
from urllib.parse import unquote_plus

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field

from smr.inbound.webhooks.base import (
    LineItem,
    OrderNotice,
    PayloadError,
    SignatureError,
    Translation,
    WebhookRequest,
    first_phone,
    payment_key,
    read_json,
    read_model,
    same,
)
from smr.schemas import Key, aware

ACK: Final = {"code": 0, "msg": "success"}
SIGN_HEADER, CLIENT_HEADER, TYPE_HEADER = "Event-Sign", "Client-Id", "Event-Type"
PAID = frozenset({"trade_TradePaid", "trade_TradeBuyerPay"})
REFUNDED = frozenset(
    {"trade_refund_RefundSuccess", "trade_refund_RefundSellerAgree", "youzan_trade_RefundSuccess"}
)
BEIJING = timezone(timedelta(hours=8))
YOUZAN_TIME = "%Y-%m-%d %H:%M:%S"


def md5_hex(*parts: str | bytes) -> str:
    data = b"".join(part.encode() if isinstance(part, str) else part for part in parts)
    return hashlib.md5(data).hexdigest()  # noqa: S324 - Youzan's scheme, not our choice


def _text(value: object) -> object:
    # Youzan sends ids as numbers or strings, and "" or 0 for none (sku_id 0: no spec).
    if isinstance(value, bool):
        return value
    if value in ("", 0, "0"):
        return None
    return str(value) if isinstance(value, int) else value


def _blank(value: object) -> object:
    return None if value == "" else value


def _beijing(value: object) -> object:
    # Youzan's times read "2019-08-20 19:09:37", Beijing time; "" means none.
    if value == "":
        return None
    if isinstance(value, str):
        try:
            return datetime.strptime(value, YOUZAN_TIME).replace(tzinfo=BEIJING)
        except ValueError:
            return value
    return value


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else aware(value)


Text = Annotated[str | None, BeforeValidator(_text)]
Money = Annotated[Decimal | None, BeforeValidator(_blank)]
Time = Annotated[datetime | None, BeforeValidator(_beijing), AfterValidator(_utc)]


class Envelope(BaseModel):
    type: str | None = None
    client_id: Text = None
    kdt_id: Text = None
    msg: str | dict[str, Any] | None = None
    msg_id: Text = None
    test: bool = False


class OrderInfo(BaseModel):
    tid: Key
    pay_time: Time = None
    update_time: Time = None
    created: Time = None


class Buyer(BaseModel):
    yz_open_id: Text = None
    buyer_id: Text = None
    fans_id: Text = None
    buyer_phone: str | None = None
    fans_nickname: str | None = None


class PayInfo(BaseModel):
    payment: Decimal = Field(ge=0)


class AddressInfo(BaseModel):
    receiver_tel: str | None = None
    receiver_name: str | None = None


class TradeLine(BaseModel):
    item_id: Annotated[Key, BeforeValidator(_text)]
    sku_id: Text = None
    outer_sku_id: str | None = None
    outer_item_id: str | None = None
    title: str | None = None
    num: int = Field(default=1, ge=0)
    price: Money = None

    def code(self) -> str:
        """The merchant's own code (规格编码, else 商品编码); a line without one is known by
        Youzan's spec id, else its item id, prefixed so that it cannot be taken for a code."""
        for code in (self.outer_sku_id, self.outer_item_id):
            if code and code.strip():
                return code.strip()
        return f"sku:{self.sku_id}" if self.sku_id else f"item:{self.item_id}"


class FullOrder(BaseModel):
    order_info: OrderInfo
    buyer_info: Buyer = Field(default_factory=Buyer)
    pay_info: PayInfo
    address_info: AddressInfo = Field(default_factory=AddressInfo)
    orders: list[TradeLine] = Field(default_factory=list)


class TradeMsg(BaseModel):
    full_order_info: FullOrder


class RefundMsg(BaseModel):
    tid: Key
    refund_id: Annotated[Key, BeforeValidator(_text)]
    refunded_fee: Decimal = Field(ge=0)
    refund_type: str | None = None
    update_time: Time = None


def _decode(msg: str | dict[str, Any] | None) -> Any:
    if msg is None or isinstance(msg, dict):
        return msg
    # URL-encoded the way Java's URLEncoder does (spaces as "+"); a few pushes send it plain.
    text = msg if msg.lstrip().startswith("{") else unquote_plus(msg)
    return read_json(text, "msg")


def _plain(value: str | None) -> str | None:
    # Youzan encrypts personal fields for some apps ("$eTS8t8hAEC…==$1$"); those name no one.
    return None if not value or (value.startswith("$") and value.endswith("$")) else value


def _body_fields(request: WebhookRequest) -> dict[str, Any]:
    try:
        found = request.data()
    except PayloadError:
        return {}
    return found if isinstance(found, dict) else {}


class YouzanSource:
    name: ClassVar[str] = "youzan"
    acknowledgement: ClassVar[Mapping[str, object]] = ACK

    def verify(self, request: WebhookRequest, secret: str) -> None:
        event_sign = request.header(SIGN_HEADER)
        if event_sign:
            client_id = request.header(CLIENT_HEADER) or _body_fields(request).get("client_id")
            if not isinstance(client_id, str) or not client_id:
                raise SignatureError(f"The {CLIENT_HEADER} header is missing.")
            if not same(md5_hex(client_id, request.body, secret), event_sign.lower()):
                raise SignatureError(f"{SIGN_HEADER} does not verify.")
            return
        fields = _body_fields(request)
        sign, msg, client_id = fields.get("sign"), fields.get("msg"), fields.get("client_id")
        if not all(isinstance(part, str) and part for part in (sign, msg, client_id)):
            raise SignatureError(f"The {SIGN_HEADER} header is missing, and no sign in the body.")
        if not same(md5_hex(str(client_id), str(msg), secret), str(sign).lower()):
            raise SignatureError("The push's sign does not verify.")

    def translate(self, request: WebhookRequest) -> Translation:
        envelope = read_model(Envelope, request.data())
        kind = envelope.type or request.header(TYPE_HEADER) or ""
        if envelope.test:
            return Translation(ignored=f"a Youzan test push ({kind})")
        if kind in PAID:
            msg = read_model(TradeMsg, _decode(envelope.msg), "msg")
            return self._payment(msg.full_order_info, envelope, kind, request)
        if kind in REFUNDED:
            refund = read_model(RefundMsg, _decode(envelope.msg), "msg")
            return Translation(notices=(self._refund(refund, envelope, kind, request),))
        return Translation(ignored=f"the {kind or 'untyped'} message is not a payment or a refund")

    def _payment(
        self, order: FullOrder, envelope: Envelope, kind: str, request: WebhookRequest
    ) -> Translation:
        info, buyer, address = order.order_info, order.buyer_info, order.address_info
        customer = next((i for i in (buyer.yz_open_id, buyer.buyer_id, buyer.fans_id) if i), None)
        phone = first_phone(_plain(buyer.buyer_phone), _plain(address.receiver_tel))
        identities = {"shop_customer_id": customer, "phone": phone}
        notice = OrderNotice(
            key=payment_key(info.tid),
            type="order.paid",
            occurred_at=info.pay_time or info.update_time or info.created or request.received_at,
            order_id=info.tid,
            total=order.pay_info.payment,
            currency="CNY",
            items=[LineItem(i.code(), i.title, i.num, i.price) for i in order.orders],
            identities={key: value for key, value in identities.items() if value},
            name=_plain(buyer.fans_nickname) or _plain(address.receiver_name),
            extra=_extra(envelope, kind),
        )
        if not notice.identities:
            return Translation(ignored=f"order {info.tid} names no buyer id or phone")
        return Translation(notices=(notice,))

    def _refund(
        self, refund: RefundMsg, envelope: Envelope, kind: str, request: WebhookRequest
    ) -> OrderNotice:
        more = {"refund_id": refund.refund_id, "refund_type": refund.refund_type}
        return OrderNotice(
            key=f"{refund.tid}:refunded:{refund.refund_id}",
            type="order.refunded",
            occurred_at=refund.update_time or request.received_at,
            order_id=refund.tid,
            total=refund.refunded_fee,
            currency="CNY",
            extra=_extra(envelope, kind, more),
        )


def _extra(
    envelope: Envelope, kind: str, more: dict[str, str | None] | None = None
) -> dict[str, str]:
    found = {
        "topic": kind,
        "delivery_id": envelope.msg_id,
        "kdt_id": envelope.kdt_id,
        **(more or {}),
    }
    return {key: value for key, value in found.items() if value}
