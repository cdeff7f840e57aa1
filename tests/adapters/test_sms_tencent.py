"""The sms channel through Tencent Cloud SendSms (2021-01-11): what a request carries, and how
every answer becomes an outcome (the vendor faked with respx, see sms_fake)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
import respx

from adapters.sms import TencentSms
from adapters.sms.signing import tc3_authorization
from smr.channels import PermanentSendError
from smr.statuses import SkipReason
from tests.adapters import sms_fake as fake
from tests.adapters.sms_fake import PERMANENT, SENT, Expect, check, outcome, retry, skip


@pytest.fixture
async def tencent() -> AsyncIterator[TencentSms]:
    adapter = fake.tencent()
    yield adapter
    await adapter.aclose()


ANSWERS = {
    "ok": (fake.tencent_status(), SENT),
    "InternalError.Timeout": (fake.tencent_err("InternalError.Timeout"), retry()),
    "InternalError.OtherError": (fake.tencent_err("InternalError.OtherError"), retry()),
    "InternalError": (fake.tencent_err("InternalError"), retry()),
    "InternalError.RequestTimeException": (
        fake.tencent_err("InternalError.RequestTimeException"),
        PERMANENT,
    ),
    "RequestLimitExceeded": (fake.tencent_err("RequestLimitExceeded"), retry()),
    "RequestLimitExceeded.IPLimitExceeded": (
        fake.tencent_err("RequestLimitExceeded.IPLimitExceeded"),
        retry(),
    ),
    "AuthFailure.SignatureFailure": (fake.tencent_err("AuthFailure.SignatureFailure"), PERMANENT),
    "AuthFailure.SecretIdNotFound": (fake.tencent_err("AuthFailure.SecretIdNotFound"), PERMANENT),
    "UnauthorizedOperation.SmsSdkAppIdVerifyFail": (
        fake.tencent_err("UnauthorizedOperation.SmsSdkAppIdVerifyFail"),
        PERMANENT,
    ),
    "FailedOperation.TemplateIncorrectOrUnapproved": (
        fake.tencent_err("FailedOperation.TemplateIncorrectOrUnapproved"),
        PERMANENT,
    ),
    "FailedOperation.SignatureIncorrectOrUnapproved": (
        fake.tencent_err("FailedOperation.SignatureIncorrectOrUnapproved"),
        PERMANENT,
    ),
    # The call went through; the number's own status refuses it.
    "status-ThirtySecondLimit": (
        fake.tencent_status("LimitExceeded.PhoneNumberThirtySecondLimit"),
        retry(30),
    ),
    "status-DeliveryFrequencyLimit": (
        fake.tencent_status("LimitExceeded.DeliveryFrequencyLimit"),
        retry(60),
    ),
    "status-OneHourLimit": (
        fake.tencent_status("LimitExceeded.PhoneNumberOneHourLimit"),
        retry(600),
    ),
    "status-PhoneNumberDailyLimit": (
        fake.tencent_status("LimitExceeded.PhoneNumberDailyLimit"),
        skip(SkipReason.FREQUENCY_CAPPED),
    ),
    "status-AppDailyLimit": (
        fake.tencent_status("LimitExceeded.AppDailyLimit"),
        skip(SkipReason.QUOTA_EXHAUSTED),
    ),
    "status-unknown-LimitExceeded": (fake.tencent_status("LimitExceeded.SomethingNew"), retry(60)),
    "status-IncorrectPhoneNumber": (
        fake.tencent_status("InvalidParameterValue.IncorrectPhoneNumber"),
        PERMANENT,
    ),
    "status-PhoneNumberInBlacklist": (
        fake.tencent_status("FailedOperation.PhoneNumberInBlacklist"),
        PERMANENT,
    ),
    "status-InsufficientBalance": (
        fake.tencent_status("FailedOperation.InsufficientBalanceInSmsPackage"),
        PERMANENT,
    ),
    "status-InternalError.Timeout": (fake.tencent_status("InternalError.Timeout"), retry()),
    "http-502": (httpx.Response(502), retry(None)),
    "http-429-retry-after": (httpx.Response(429, headers={"Retry-After": "3"}), retry(3)),
    "http-200-not-json": (httpx.Response(200, text="<html>proxy</html>"), retry(None)),
    "http-200-no-status": (httpx.Response(200, json={"Response": {"RequestId": "r"}}), retry(None)),
    "http-404-no-body": (httpx.Response(404), PERMANENT),
}


@pytest.mark.parametrize(("answer", "expect"), ANSWERS.values(), ids=list(ANSWERS))
async def test_tencent_answers(
    tencent: TencentSms, respx_mock: respx.MockRouter, answer: httpx.Response, expect: Expect
) -> None:
    fake.tencent_route(respx_mock).mock(return_value=answer)

    check(await outcome(tencent), expect)


async def test_tencent_sent_records_the_serial_no(
    tencent: TencentSms, respx_mock: respx.MockRouter
) -> None:
    fake.tencent_route(respx_mock).mock(return_value=fake.tencent_status())

    result = await tencent.send(fake.message())

    assert result.vendor_message_id == "5000:1045710669157053657849499619"
    assert result.response is not None
    assert "Code=Ok" in result.response
    assert fake.REQUEST_ID in result.response


async def test_tencent_a_refused_number_records_its_code_and_message(
    tencent: TencentSms, respx_mock: respx.MockRouter
) -> None:
    answer = fake.tencent_status("FailedOperation.PhoneNumberInBlacklist", "in blacklist")
    fake.tencent_route(respx_mock).mock(return_value=answer)

    with pytest.raises(PermanentSendError) as raised:
        await tencent.send(fake.message())

    assert "Code=FailedOperation.PhoneNumberInBlacklist" in raised.value.response
    assert "Message=in blacklist" in raised.value.response


async def test_tencent_request_is_a_tc3_signed_sendsms(
    tencent: TencentSms, respx_mock: respx.MockRouter
) -> None:
    route = fake.tencent_route(respx_mock).mock(return_value=fake.tencent_status())

    await tencent.send(fake.message("dl_0042", phone="13800138000", params={"1": "小王"}))

    request = route.calls.last.request
    timestamp = int(fake.NOW.timestamp())
    assert request.headers["x-tc-action"] == "SendSms"
    assert request.headers["x-tc-version"] == "2021-01-11"
    assert request.headers["x-tc-timestamp"] == str(timestamp)
    assert request.headers["x-tc-region"] == "ap-guangzhou"
    assert request.headers["content-type"] == "application/json; charset=utf-8"
    assert request.headers["host"] == "sms.tencentcloudapi.test"
    assert fake.body(route.calls.last) == {
        "PhoneNumberSet": ["+8613800138000"],
        "SmsSdkAppId": fake.SDK_APP_ID,
        "SignName": fake.SIGN,
        "TemplateId": "SMS_123",
        "TemplateParamSet": ["小王"],
        "SessionContext": "dl_0042",
    }
    # What Tencent recomputes from the request it received.
    assert request.headers["authorization"] == tc3_authorization(
        secret_id=fake.KEY_ID,
        secret_key=fake.SECRET,
        service="sms",
        host=request.headers["host"],
        content_type=request.headers["content-type"],
        payload=request.content,
        timestamp=timestamp,
    )
    assert request.headers["authorization"].startswith(
        f"TC3-HMAC-SHA256 Credential={fake.KEY_ID}/2026-11-23/sms/tc3_request, "
        "SignedHeaders=content-type;host, Signature="
    )
    assert fake.SECRET not in json.dumps(dict(request.headers)) + request.content.decode()


@pytest.mark.parametrize(
    ("params", "param_set"),
    [
        ({"2": "b", "1": "a"}, ["a", "b"]),
        ({str(i): f"v{i}" for i in range(10, 0, -1)}, [f"v{i}" for i in range(1, 11)]),
        ({"code": "1234"}, ["1234"]),
    ],
    ids=["numbered", "ten-numbered", "single-named"],
)
async def test_tencent_params_fill_the_numbered_variables_in_order(
    tencent: TencentSms,
    respx_mock: respx.MockRouter,
    params: dict[str, str],
    param_set: list[str],
) -> None:
    route = fake.tencent_route(respx_mock).mock(return_value=fake.tencent_status())

    await tencent.send(fake.message(params=params))

    assert fake.body(route.calls.last)["TemplateParamSet"] == param_set


@pytest.mark.parametrize(
    "params", [{"name": "小王", "order": "A1"}, {"1": "a", "3": "c"}], ids=["named", "gap"]
)
async def test_tencent_refuses_params_it_cannot_order(
    tencent: TencentSms, respx_mock: respx.MockRouter, params: dict[str, str]
) -> None:
    route = fake.tencent_route(respx_mock)

    with pytest.raises(PermanentSendError, match="positional"):
        await tencent.send(fake.message(params=params))

    assert not route.called


async def test_tencent_without_params_sends_no_param_set(
    tencent: TencentSms, respx_mock: respx.MockRouter
) -> None:
    route = fake.tencent_route(respx_mock).mock(return_value=fake.tencent_status())

    await tencent.send(fake.message(params={}))

    assert "TemplateParamSet" not in fake.body(route.calls.last)


@pytest.mark.parametrize(
    ("stored", "sent"),
    [
        ("13800138000", "+8613800138000"),
        ("+8613800138000", "+8613800138000"),
        ("86 13800138000", "+8613800138000"),
        ("+85291234567", "+85291234567"),
        ("0085291234567", "+85291234567"),
    ],
)
async def test_tencent_takes_e164_numbers(
    tencent: TencentSms, respx_mock: respx.MockRouter, stored: str, sent: str
) -> None:
    route = fake.tencent_route(respx_mock).mock(return_value=fake.tencent_status(phone=sent))

    await tencent.send(fake.message(phone=stored))

    assert fake.body(route.calls.last)["PhoneNumberSet"] == [sent]
