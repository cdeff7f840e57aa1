"""The signing functions against the vendors' documented worked examples: fixed inputs, the
signature the documentation prints."""

from __future__ import annotations

import pytest

from adapters.sms.signing import (
    aliyun_signature,
    aliyun_string_to_sign,
    percent_encode,
    tc3_authorization,
    tc3_canonical_request,
    tc3_signature,
    tc3_string_to_sign,
)

# 短信服务 "HTTP协议及签名" (https://help.aliyun.com/document_detail/56189.html, and the
# step-by-step "签名机制" https://help.aliyun.com/document_detail/101343.html): SendSms with
# AccessKeyId testId, secret testSecret, signed for GET.
ALIYUN_SMS_PARAMS = {
    "AccessKeyId": "testId",
    "Action": "SendSms",
    "Format": "XML",
    "OutId": "123",
    "PhoneNumbers": "15300000001",
    "RegionId": "cn-hangzhou",
    "SignName": "阿里云短信测试专用",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0",
    "TemplateCode": "SMS_71390007",
    "TemplateParam": '{"customer":"test"}',
    "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}
ALIYUN_SMS_STRING_TO_SIGN = (
    "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML%26OutId%3D123"
    "%26PhoneNumbers%3D15300000001%26RegionId%3Dcn-hangzhou%26SignName%3D%25E9%2598%25BF"
    "%25E9%2587%258C%25E4%25BA%2591%25E7%259F%25AD%25E4%25BF%25A1%25E6%25B5%258B%25E8%25AF"
    "%2595%25E4%25B8%2593%25E7%2594%25A8%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce"
    "%3D45e25e9b-0a6f-4070-8c85-2956eda1b466%26SignatureVersion%3D1.0%26TemplateCode"
    "%3DSMS_71390007%26TemplateParam%3D%257B%2522customer%2522%253A%2522test%2522%257D"
    "%26Timestamp%3D2017-07-12T02%253A42%253A19Z%26Version%3D2017-05-25"
)

# The RPC "签名机制" example every Aliyun product repeats (DescribeRegions, testid /
# testsecret; e.g. https://developer.aliyun.com/ask/210168), with the parameter spelled
# "TimeStamp" as printed there.
ALIYUN_RPC_PARAMS = {
    "TimeStamp": "2016-02-23T12:46:24Z",
    "Format": "XML",
    "AccessKeyId": "testid",
    "Action": "DescribeRegions",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
    "Version": "2014-05-26",
    "SignatureVersion": "1.0",
}

# Tencent Cloud "签名方法 v3" (https://www.tencentcloud.com/document/product/1021/34193):
# CVM DescribeInstances in ap-guangzhou at 1551113065.
TC3_PAYLOAD = (
    b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
)
TC3_CANONICAL_REQUEST = (
    "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\n"
    "content-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
)
TC3_STRING_TO_SIGN = (
    "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n"
    "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
)


def test_aliyun_sms_documented_string_to_sign() -> None:
    assert aliyun_string_to_sign(ALIYUN_SMS_PARAMS, method="GET") == ALIYUN_SMS_STRING_TO_SIGN


def test_aliyun_sms_documented_signature() -> None:
    signature = aliyun_signature(ALIYUN_SMS_PARAMS, "testSecret", method="GET")

    assert signature == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def test_aliyun_rpc_documented_signature() -> None:
    signature = aliyun_signature(ALIYUN_RPC_PARAMS, "testsecret", method="GET")

    assert signature == "CT9X0VtwR86fNWSnsc6v8YGOjuE="


def test_aliyun_signature_ignores_a_signature_parameter_and_depends_on_the_method() -> None:
    signed = aliyun_signature(ALIYUN_SMS_PARAMS, "testSecret", method="GET")
    again = aliyun_signature({**ALIYUN_SMS_PARAMS, "Signature": signed}, "testSecret", method="GET")

    assert again == signed
    assert aliyun_signature(ALIYUN_SMS_PARAMS, "testSecret", method="POST") != signed


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("a b", "a%20b"),
        ("*", "%2A"),
        ("~-_.", "~-_."),
        ("/=&+", "%2F%3D%26%2B"),
        ("派", "%E6%B4%BE"),
    ],
)
def test_percent_encode_follows_rfc_3986(raw: str, encoded: str) -> None:
    assert percent_encode(raw) == encoded


def test_tc3_documented_canonical_request_and_string_to_sign() -> None:
    request = tc3_canonical_request(
        host="cvm.tencentcloudapi.com",
        content_type="application/json; charset=utf-8",
        payload=TC3_PAYLOAD,
    )

    assert request == TC3_CANONICAL_REQUEST
    assert tc3_string_to_sign(request, timestamp=1551113065, service="cvm") == TC3_STRING_TO_SIGN


@pytest.mark.parametrize(
    ("secret_id", "secret_key", "signature"),
    [
        # tencentcloud.com (page above): the example key pair ending in EXAMPLE.
        (
            "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
            "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
            "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168",
        ),
        # The same example in cloud.tencent.com's "签名方法 v3" pages (every product's API docs
        # carry one), which print the key pair masked with asterisks and sign with it as printed.
        (
            "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******",
            "Gu5t9xGARNpq86cd98joQYCN3*******",
            "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c",
        ),
    ],
    ids=["example-key", "masked-key"],
)
def test_tc3_documented_authorization(secret_id: str, secret_key: str, signature: str) -> None:
    authorization = tc3_authorization(
        secret_id=secret_id,
        secret_key=secret_key,
        service="cvm",
        host="cvm.tencentcloudapi.com",
        content_type="application/json; charset=utf-8",
        payload=TC3_PAYLOAD,
        timestamp=1551113065,
    )

    assert authorization == (
        f"TC3-HMAC-SHA256 Credential={secret_id}/2019-02-25/cvm/tc3_request, "
        f"SignedHeaders=content-type;host, Signature={signature}"
    )
    assert tc3_signature(secret_key, TC3_STRING_TO_SIGN, timestamp=1551113065, service="cvm") == (
        signature
    )


def test_tc3_date_is_the_utc_date() -> None:
    # 1551113065 is 2019-02-26 00:44:25 in Beijing, but the credential scope takes the UTC date.
    assert "\n2019-02-25/cvm/" in tc3_string_to_sign("", timestamp=1551113065, service="cvm")
