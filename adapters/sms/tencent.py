"""Tencent Cloud SMS: ``SendSms``, API version 2021-01-11, signed with TC3-HMAC-SHA256.

The request is a JSON POST (PhoneNumberSet, SmsSdkAppId, SignName, TemplateId,
TemplateParamSet, SessionContext) with the X-TC-Action / -Version / -Timestamp / -Region
headers and the ``Authorization`` of ``signing``. A refused call answers
``{"Response": {"Error": {"Code", "Message"}, "RequestId"}}``; an accepted one reports each
number in ``SendStatusSet`` with its own Code, and only ``Ok`` there means sent.

Tencent templates number their variables: {1}, {2}, … ``TemplateParamSet`` is a list, so
params are keyed "1", "2", … and sent in that order; a single param fills {1} whatever its
name. Names would need an order the database does not keep (PostgreSQL's JSONB sorts keys),
so several named params are refused rather than risk the wrong value in the wrong slot.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from adapters.http import unavailable
from adapters.sms.base import SmsChannel, compact_json, json_object
from adapters.sms.errors import tencent_error
from adapters.sms.signing import tc3_authorization
from smr import phones
from smr.channels import OutboundMessage, PermanentSendError, RetriableSendError, SendResult

API_VERSION = "2021-01-11"
SERVICE = "sms"
CONTENT_TYPE = "application/json; charset=utf-8"
API = "tencent SendSms"


class TencentSms(SmsChannel):
    name: ClassVar[str] = "sms.tencent"
    required: ClassVar[tuple[str, ...]] = ("sign_name", "sdk_app_id")
    default_base_url: ClassVar[str] = "https://sms.tencentcloudapi.com"
    default_region: ClassVar[str] = "ap-guangzhou"

    async def send_template(
        self, message: OutboundMessage, phone: str, template: str
    ) -> SendResult:
        number = phones.for_tencent(phone)
        body: dict[str, Any] = {
            "PhoneNumberSet": [number],
            "SmsSdkAppId": self.config.sdk_app_id,
            "SignName": self.sign_name,
            "TemplateId": template,
            "SessionContext": message.delivery_id,
        }
        if message.params:
            body["TemplateParamSet"] = positional(message.params)
        payload = compact_json(body).encode()
        response = await self.post(payload, self.headers(payload))
        return outcome(response, number)

    def headers(self, payload: bytes) -> dict[str, str]:
        timestamp = int(self.now().timestamp())
        authorization = tc3_authorization(
            secret_id=self._key_id,
            secret_key=self._secret.get_secret_value(),
            service=SERVICE,
            host=httpx.URL(self.base_url).netloc.decode(),
            content_type=CONTENT_TYPE,
            payload=payload,
            timestamp=timestamp,
        )
        return {
            "Authorization": authorization,
            "Content-Type": CONTENT_TYPE,
            "X-TC-Action": "SendSms",
            "X-TC-Version": API_VERSION,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Region": self.region,
        }


def positional(params: Mapping[str, str]) -> list[str]:
    """TemplateParamSet: the values of params "1", "2", … in that order (see the module)."""
    if len(params) == 1:
        return list(params.values())
    slots = [str(i) for i in range(1, len(params) + 1)]
    if set(params) != set(slots):
        raise PermanentSendError(
            f"{API}: Tencent templates are positional ({{1}}, {{2}}, …); name the params "
            f"{', '.join(repr(s) for s in slots)}, not {', '.join(repr(k) for k in params)}"
        )
    return [params[slot] for slot in slots]


def outcome(response: httpx.Response, number: str) -> SendResult:
    """The SendResult of an answer, or the SendError it comes to."""
    answer = json_object(response) or {}
    body = answer.get("Response")
    body = body if isinstance(body, dict) else {}
    request_id = f" RequestId={body['RequestId']}" if body.get("RequestId") else ""
    error = body.get("Error")
    said = describe(error) + request_id if isinstance(error, dict) else request_id.strip()
    if failure := unavailable(API, response, said):
        raise failure
    if isinstance(error, dict):
        raise tencent_error(str(error.get("Code") or ""), f"{API}: {said}")
    status = _status_of(body, number)
    if status is None:
        if response.status_code == 200:
            raise RetriableSendError(f"{API}: HTTP 200 without a SendStatusSet")
        raise PermanentSendError(f"{API}: HTTP {response.status_code}")
    said = describe(status) + request_id
    if status.get("Code") != "Ok":
        raise tencent_error(str(status.get("Code") or ""), f"{API}: {said}")
    serial = str(status.get("SerialNo") or "") or None
    return SendResult(vendor_message_id=serial, response=f"{API}: {said}")


def _status_of(body: dict[str, Any], number: str) -> dict[str, Any] | None:
    """This number's entry in SendStatusSet (the only one: we send to one number)."""
    statuses = [s for s in body.get("SendStatusSet") or [] if isinstance(s, dict)]
    mine = [s for s in statuses if s.get("PhoneNumber") == number]
    if not statuses:
        return None
    return mine[0] if mine else statuses[0]


def describe(entry: dict[str, Any]) -> str:
    fields = ("Code", "Message", "SerialNo", "Fee")
    return " ".join(f"{f}={entry[f]}" for f in fields if entry.get(f) not in (None, ""))
