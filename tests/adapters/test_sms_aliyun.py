"""The sms channel through Aliyun Dysmsapi SendSms: what a request carries, and how every
answer becomes an outcome (the vendor faked with respx, see sms_fake)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import respx

from adapters.sms import AliyunSms
from adapters.sms.signing import aliyun_signature
from smr.channels import PermanentSendError
from smr.statuses import SkipReason
from tests.adapters import sms_fake as fake
from tests.adapters.sms_fake import PERMANENT, SENT, Expect, check, outcome, retry, skip


@pytest.fixture
async def aliyun() -> AsyncIterator[AliyunSms]:
    adapter = fake.aliyun()
    yield adapter
    await adapter.aclose()


ANSWERS = {
    "ok": (fake.aliyun_ok(), SENT),
    "isp.SYSTEM_ERROR": (fake.aliyun_err("isp.SYSTEM_ERROR"), retry()),
    "isp.GATEWAY_ERROR": (fake.aliyun_err("isp.GATEWAY_ERROR"), retry()),
    "Throttling.User": (fake.aliyun_err("Throttling.User", status=400), retry()),
    "ServiceUnavailable-503": (fake.aliyun_err("ServiceUnavailable", status=503), retry(None)),
    "business-limit-minute": (
        fake.aliyun_err("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1"),
        retry(60),
    ),
    "business-limit-hour": (
        fake.aliyun_err("isv.BUSINESS_LIMIT_CONTROL", "触发小时级流控Permits:5"),
        retry(600),
    ),
    "business-limit-day": (
        fake.aliyun_err("isv.BUSINESS_LIMIT_CONTROL", "触发天级流控Permits:10"),
        skip(SkipReason.FREQUENCY_CAPPED),
    ),
    "isv.DAY_LIMIT_CONTROL": (
        fake.aliyun_err("isv.DAY_LIMIT_CONTROL"),
        skip(SkipReason.QUOTA_EXHAUSTED),
    ),
    "isv.MONTH_LIMIT_CONTROL": (
        fake.aliyun_err("isv.MONTH_LIMIT_CONTROL"),
        skip(SkipReason.QUOTA_EXHAUSTED),
    ),
    "isv.MOBILE_NUMBER_ILLEGAL": (fake.aliyun_err("isv.MOBILE_NUMBER_ILLEGAL"), PERMANENT),
    "isv.SMS_TEMPLATE_ILLEGAL": (fake.aliyun_err("isv.SMS_TEMPLATE_ILLEGAL"), PERMANENT),
    "isv.TEMPLATE_MISSING_PARAMETERS": (
        fake.aliyun_err("isv.TEMPLATE_MISSING_PARAMETERS"),
        PERMANENT,
    ),
    "isv.SMS_SIGNATURE_ILLEGAL": (fake.aliyun_err("isv.SMS_SIGNATURE_ILLEGAL"), PERMANENT),
    "isv.BLACK_KEY_CONTROL_LIMIT": (fake.aliyun_err("isv.BLACK_KEY_CONTROL_LIMIT"), PERMANENT),
    "isv.AMOUNT_NOT_ENOUGH": (fake.aliyun_err("isv.AMOUNT_NOT_ENOUGH"), PERMANENT),
    "isp.RAM_PERMISSION_DENY": (fake.aliyun_err("isp.RAM_PERMISSION_DENY"), PERMANENT),
    "InvalidAccessKeyId.NotFound": (
        fake.aliyun_err("InvalidAccessKeyId.NotFound", status=404),
        PERMANENT,
    ),
    "SignatureDoesNotMatch": (fake.aliyun_err("SignatureDoesNotMatch", status=400), PERMANENT),
    "unknown-isv-code": (fake.aliyun_err("isv.SOMETHING_NEW"), PERMANENT),
    "http-502": (httpx.Response(502), retry(None)),
    "http-429-retry-after": (httpx.Response(429, headers={"Retry-After": "7"}), retry(7)),
    "http-200-not-json": (httpx.Response(200, text="<html>proxy</html>"), retry(None)),
    "http-403-no-code": (httpx.Response(403, text="forbidden"), PERMANENT),
}


@pytest.mark.parametrize(("answer", "expect"), ANSWERS.values(), ids=list(ANSWERS))
async def test_aliyun_answers(
    aliyun: AliyunSms, respx_mock: respx.MockRouter, answer: httpx.Response, expect: Expect
) -> None:
    fake.aliyun_route(respx_mock).mock(return_value=answer)

    check(await outcome(aliyun), expect)


async def test_aliyun_sent_records_the_biz_id_and_the_request_id(
    aliyun: AliyunSms, respx_mock: respx.MockRouter
) -> None:
    fake.aliyun_route(respx_mock).mock(return_value=fake.aliyun_ok("9006197469364984^0"))

    result = await aliyun.send(fake.message())

    assert result.vendor_message_id == "9006197469364984^0"
    assert result.response is not None
    assert "Code=OK" in result.response
    assert fake.REQUEST_ID in result.response


async def test_aliyun_refusals_record_the_vendor_code_and_message(
    aliyun: AliyunSms, respx_mock: respx.MockRouter
) -> None:
    answer = fake.aliyun_err("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
    fake.aliyun_route(respx_mock).mock(return_value=answer)

    with pytest.raises(PermanentSendError) as raised:
        await aliyun.send(fake.message())

    assert "Code=isv.MOBILE_NUMBER_ILLEGAL" in raised.value.response
    assert "Message=非法手机号" in raised.value.response


async def test_aliyun_request_is_a_signed_sendsms_form(
    aliyun: AliyunSms, respx_mock: respx.MockRouter
) -> None:
    route = fake.aliyun_route(respx_mock).mock(return_value=fake.aliyun_ok())

    await aliyun.send(fake.message("dl_0042", phone="+8613800138000", params={"name": "小王"}))

    request = route.calls.last.request
    assert request.headers["content-type"].startswith("application/x-www-form-urlencoded")
    sent = fake.form(route.calls.last)
    signature = sent.pop("Signature")
    assert sent == {
        "AccessKeyId": fake.KEY_ID,
        "Action": "SendSms",
        "Format": "JSON",
        "RegionId": "cn-hangzhou",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": fake.NONCE,
        "SignatureVersion": "1.0",
        "Timestamp": "2026-11-23T03:00:00Z",
        "Version": "2017-05-25",
        "PhoneNumbers": "13800138000",
        "SignName": fake.SIGN,
        "TemplateCode": "SMS_123",
        "TemplateParam": '{"name":"小王"}',
        "OutId": "dl_0042",
    }
    # What Aliyun recomputes from the form it received.
    assert signature == aliyun_signature(sent, fake.SECRET, method="POST")
    assert fake.SECRET not in request.content.decode()


async def test_aliyun_without_params_sends_no_template_param(
    aliyun: AliyunSms, respx_mock: respx.MockRouter
) -> None:
    route = fake.aliyun_route(respx_mock).mock(return_value=fake.aliyun_ok())

    await aliyun.send(fake.message(params={}))

    assert "TemplateParam" not in fake.form(route.calls.last)


async def test_aliyun_region_and_base_url_are_settings(respx_mock: respx.MockRouter) -> None:
    adapter = fake.aliyun(region="cn-shanghai", base_url="https://proxy.test/dysms")
    route = respx_mock.post("https://proxy.test/dysms/").mock(return_value=fake.aliyun_ok())

    await adapter.send(fake.message())
    await adapter.aclose()

    assert fake.form(route.calls.last)["RegionId"] == "cn-shanghai"


@pytest.mark.parametrize(
    ("stored", "sent"),
    [
        ("13800138000", "13800138000"),
        ("+8613800138000", "13800138000"),
        ("8613800138000", "13800138000"),
        ("008613800138000", "13800138000"),
        ("+86 138-0013-8000", "13800138000"),
        ("+85291234567", "85291234567"),
    ],
)
async def test_aliyun_takes_mainland_numbers_without_86(
    aliyun: AliyunSms, respx_mock: respx.MockRouter, stored: str, sent: str
) -> None:
    route = fake.aliyun_route(respx_mock).mock(return_value=fake.aliyun_ok())

    await aliyun.send(fake.message(phone=stored))

    assert fake.form(route.calls.last)["PhoneNumbers"] == sent
