"""Fake Aliyun and Tencent Cloud SMS APIs on respx: the answers the vendors document, helpers
to read the calls, and the expected outcomes the answer tables are written in."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx
import respx
from pydantic import SecretStr

from adapters.sms import AliyunSms, SmsChannel, TencentSms
from smr.channels import (
    OutboundMessage,
    PermanentSendError,
    RetriableSendError,
    SendError,
    SendResult,
    SkippedSend,
)
from smr.config import SmsSettings
from smr.statuses import SkipReason
from tests.helpers import FakeClock

ALIYUN_BASE = "https://dysmsapi.test"
TENCENT_BASE = "https://sms.tencentcloudapi.test"
KEY_ID = "LTAI-test-key-id"
SECRET = "sms-secret-value-0123456789"
SIGN = "小店"
SDK_APP_ID = "1400006666"
NONCE = "45e25e9b-0a6f-4070-8c85-2956eda1b466"
NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
PHONE = "13800138000"
REQUEST_ID = "F655A8D5-B967-440B-8683-DAD6FF8D28D0"


def settings(provider: str, **extra: Any) -> SmsSettings:
    base = ALIYUN_BASE if provider == "aliyun" else TENCENT_BASE
    fields: dict[str, Any] = {
        "provider": provider,
        "access_key_id": KEY_ID,
        "access_key_secret": SecretStr(SECRET),
        "sign_name": SIGN,
        "sdk_app_id": SDK_APP_ID if provider == "tencent" else None,
        "base_url": base,
        **extra,
    }
    return SmsSettings(**fields)


def aliyun(clock: FakeClock | None = None, **extra: Any) -> AliyunSms:
    return AliyunSms(
        settings("aliyun", **extra), clock=clock or FakeClock(NOW), nonce=lambda: NONCE
    )


def tencent(clock: FakeClock | None = None, **extra: Any) -> TencentSms:
    return TencentSms(settings("tencent", **extra), clock=clock or FakeClock(NOW))


def aliyun_route(mock: respx.MockRouter) -> respx.Route:
    return mock.post(f"{ALIYUN_BASE}/")


def tencent_route(mock: respx.MockRouter) -> respx.Route:
    return mock.post(f"{TENCENT_BASE}/")


def aliyun_ok(biz_id: str = "900619746936498440^0") -> httpx.Response:
    """SendSms accepted (the documented success body)."""
    answer = {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": REQUEST_ID}
    return httpx.Response(200, json=answer)


def aliyun_err(code: str, message: str = "refused", *, status: int = 200) -> httpx.Response:
    """A refusal: dysmsapi answers 200 for its isv./isp. codes, the gateway 4xx for its own."""
    return httpx.Response(status, json={"Code": code, "Message": message, "RequestId": REQUEST_ID})


def tencent_status(
    code: str = "Ok", message: str = "send success", *, phone: str = f"+86{PHONE}"
) -> httpx.Response:
    """An accepted call; ``code`` is the number's own status in SendStatusSet."""
    status = {
        "SerialNo": "5000:1045710669157053657849499619",
        "PhoneNumber": phone,
        "Fee": 1 if code == "Ok" else 0,
        "SessionContext": "dl_0001",
        "Code": code,
        "Message": message,
        "IsoCode": "CN",
    }
    return httpx.Response(
        200, json={"Response": {"SendStatusSet": [status], "RequestId": REQUEST_ID}}
    )


def tencent_err(code: str, message: str = "refused") -> httpx.Response:
    """A refused call: HTTP 200 with Response.Error."""
    error = {"Code": code, "Message": message}
    return httpx.Response(200, json={"Response": {"Error": error, "RequestId": REQUEST_ID}})


def form(call: respx.models.Call) -> dict[str, str]:
    return dict(parse_qsl(call.request.content.decode(), keep_blank_values=True))


def body(call: respx.models.Call) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(call.request.content)
    return data


def message(
    delivery_id: str = "dl_0001",
    *,
    phone: str | None = PHONE,
    template: str | None = "SMS_123",
    params: Mapping[str, str] | None = None,
) -> OutboundMessage:
    return OutboundMessage(
        delivery_id=delivery_id,
        channel="sms",
        category="service",
        contact_id="ct_1",
        recipient={"phone": phone} if phone is not None else {},
        text=None,
        template_code=template,
        params=dict(params) if params is not None else {"name": "小王"},
    )


@dataclass(frozen=True)
class Expect:
    """What a vendor answer comes to: sent, or this SendError (with its retry_after / reason)."""

    error: type[SendError] | None  # None: sent
    retry_after: float | None = None
    reason: SkipReason | None = None


SENT = Expect(None)
PERMANENT = Expect(PermanentSendError)


def retry(after: float | None = 1) -> Expect:
    return Expect(RetriableSendError, retry_after=after)


def skip(reason: SkipReason) -> Expect:
    return Expect(SkippedSend, reason=reason)


async def outcome(adapter: SmsChannel) -> SendResult | SendError:
    """The SendResult of sending the default message, or the SendError it raised."""
    try:
        return await adapter.send(message())
    except SendError as exc:
        return exc


def check(answer: SendResult | SendError, expect: Expect) -> None:
    if expect.error is None:
        assert isinstance(answer, SendResult), answer
        assert answer.vendor_message_id
        assert answer.response
        return
    assert type(answer) is expect.error, answer
    assert answer.response
    assert SECRET not in answer.response
    if isinstance(answer, RetriableSendError):
        assert answer.retry_after == expect.retry_after
    if isinstance(answer, SkippedSend):
        assert answer.reason == expect.reason
