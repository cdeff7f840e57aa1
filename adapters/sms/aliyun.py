"""Aliyun 短信服务: Dysmsapi ``SendSms``, API version 2017-05-25, RPC style.

The request is a form-encoded POST of the common parameters (AccessKeyId, Action, Format,
RegionId, SignatureMethod, SignatureNonce, SignatureVersion, Timestamp, Version) and the
API's (PhoneNumbers, SignName, TemplateCode, TemplateParam, OutId), signed with HMAC-SHA1
(``signing``). The answer is ``{"Code": "OK", "BizId", "RequestId", "Message"}``; any other
Code is a refusal (``errors``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from adapters.http import unavailable
from adapters.sms.base import SmsChannel, compact_json, json_object
from adapters.sms.errors import aliyun_error
from adapters.sms.signing import aliyun_signature, percent_encode
from smr import phones
from smr.channels import OutboundMessage, PermanentSendError, RetriableSendError, SendResult

API_VERSION = "2017-05-25"
FORM = "application/x-www-form-urlencoded; charset=utf-8"


class AliyunSms(SmsChannel):
    name: ClassVar[str] = "sms.aliyun"
    default_base_url: ClassVar[str] = "https://dysmsapi.aliyuncs.com"
    default_region: ClassVar[str] = "cn-hangzhou"

    async def send_template(
        self, message: OutboundMessage, phone: str, template: str
    ) -> SendResult:
        params = self.signed_params(message, phones.for_aliyun(phone), template)
        body = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in params.items())
        response = await self.post(body.encode(), {"Content-Type": FORM})
        answer = json_object(response) or {}
        code = str(answer.get("Code") or "")
        said = describe(answer)
        if failure := unavailable("aliyun SendSms", response, said):
            raise failure
        if not code:
            status = response.status_code
            if status == 200:
                raise RetriableSendError("aliyun SendSms: HTTP 200 without a Code")
            raise PermanentSendError(f"aliyun SendSms: HTTP {status}")
        if code != "OK":
            raise aliyun_error(code, str(answer.get("Message") or ""), f"aliyun SendSms: {said}")
        biz_id = str(answer.get("BizId") or "") or None
        return SendResult(vendor_message_id=biz_id, response=f"aliyun SendSms: {said}")

    def signed_params(self, message: OutboundMessage, number: str, template: str) -> dict[str, str]:
        """Every parameter of the call, ``Signature`` last."""
        params = {
            "AccessKeyId": self._key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "RegionId": self.region,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": self._nonce(),
            "SignatureVersion": "1.0",
            "Timestamp": self.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": API_VERSION,
            "PhoneNumbers": number,
            "SignName": self.sign_name,
            "TemplateCode": template,
            "OutId": message.delivery_id,
        }
        if message.params:
            # Named variables (${name}); Aliyun takes string values only (isv.INVALID_JSON_PARAM).
            params["TemplateParam"] = compact_json(dict(message.params))
        secret = self._secret.get_secret_value()
        return {**params, "Signature": aliyun_signature(params, secret, method="POST")}


def describe(answer: dict[str, Any]) -> str:
    """The answer as the attempt row records it."""
    fields = ("Code", "Message", "BizId", "RequestId")
    return " ".join(f"{f}={answer[f]}" for f in fields if answer.get(f) not in (None, ""))
