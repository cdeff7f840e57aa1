"""Replies (上行短信) as the vendors push them: the documented samples (kept under
tests/fixtures/sms/), and bodies that are not what the vendors document."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from smr.inbound.sms import Reply, ReplyFormatError, acknowledgement, parse_replies

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sms"


def sample(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_aliyun_smsup_batch_push() -> None:
    replies = parse_replies("aliyun", sample("aliyun_smsup.json"))

    assert replies == [
        # send_time is Beijing time: 00:00 on 1 September is 16:00 UTC the day before.
        Reply("13811112222", "内容", datetime(2017, 8, 31, 16, 0, tzinfo=UTC), "aliyun:1234567890"),
        Reply("13911113333", "TD", datetime(2017, 9, 1, 0, 30, 5, tzinfo=UTC), "aliyun:1234567891"),
    ]


def test_tencent_reply_callback() -> None:
    (reply,) = parse_replies("tencent", sample("tencent_reply.json"))

    assert (reply.phone, reply.text) == ("13800138000", "用户回复的内容")
    assert reply.received_at == datetime(2016, 3, 7, 7, 47, 49, tzinfo=UTC)
    assert reply.reply_id.startswith("tencent:")


def test_a_reply_outside_the_mainland_keeps_its_country_code() -> None:
    (reply,) = parse_replies("tencent", sample("tencent_reply_international.json"))

    assert reply.phone == "+85291234567"


def test_the_same_push_twice_has_the_same_reply_ids() -> None:
    for provider, name in [("aliyun", "aliyun_smsup.json"), ("tencent", "tencent_reply.json")]:
        first = parse_replies(provider, sample(name))
        again = parse_replies(provider, sample(name))

        assert [r.reply_id for r in first] == [r.reply_id for r in again]


def test_without_a_sequence_id_the_reply_id_is_a_digest_of_phone_time_and_text() -> None:
    body = '[{"phone_number": "13811112222", "send_time": "2017-09-01 00:00:00", "content": "%s"}]'

    (yes,) = parse_replies("aliyun", (body % "是").encode())
    (no,) = parse_replies("aliyun", (body % "否").encode())

    assert yes.reply_id.startswith("aliyun:")
    assert yes.reply_id != no.reply_id


def test_a_reply_without_a_time_has_no_received_at() -> None:
    body = b'{"mobile": "13800138000", "nationcode": "86", "text": "TD"}'

    (reply,) = parse_replies("tencent", body)

    assert reply.received_at is None


def test_an_empty_batch_is_no_replies() -> None:
    assert parse_replies("aliyun", b"[]") == []


@pytest.mark.parametrize(
    ("provider", "body", "path"),
    [
        ("aliyun", b"not json", "$"),
        ("aliyun", b'{"phone_number": "13811112222"}', "$"),
        ("aliyun", b"[42]", "$[0]"),
        ("aliyun", b'[{"content": "TD", "sequence_id": 1}]', "$[0].phone_number"),
        ("aliyun", b'[{"phone_number": "13811112222", "sequence_id": 1}]', "$[0].content"),
        (
            "aliyun",
            b'[{"phone_number": "138", "content": "TD", "send_time": "yesterday"}]',
            "$[0].send_time",
        ),
        ("aliyun", b'[{"phone_number": ["138"], "content": "TD"}]', "$[0].phone_number"),
        ("tencent", b"[]", "$"),
        ("tencent", b'{"nationcode": "86", "text": "TD"}', "$.mobile"),
        ("tencent", b'{"mobile": "13800138000", "text": "TD"}', "$.nationcode"),
        ("tencent", b'{"mobile": "13800138000", "nationcode": "86"}', "$.text"),
        ("tencent", b'{"mobile": "1", "nationcode": "86", "text": "", "time": "noon"}', "$.time"),
        ("tencent", b'{"mobile": true, "nationcode": "86", "text": "TD"}', "$.mobile"),
        ("tencent", b"\xff\xfe", "$"),
        # a time outside the bounds is refused where it stands, not as occurred_at
        (
            "aliyun",
            b'[{"phone_number": "13811112222", "content": "TD",'
            b' "send_time": "9999-12-31 23:59:59"}]',
            "$[0].send_time",
        ),
        (
            "tencent",
            b'{"mobile": "13800138000", "nationcode": "86", "text": "TD", "time": 253402300799}',
            "$.time",
        ),
    ],
)
def test_malformed_bodies_say_where(provider: str, body: bytes, path: str) -> None:
    with pytest.raises(ReplyFormatError) as raised:
        parse_replies(provider, body)

    assert raised.value.path == path
    assert isinstance(raised.value, ValueError)
    assert str(raised.value).startswith(f"{path}: ")


def test_acknowledgements_are_what_each_vendor_expects() -> None:
    assert acknowledgement("aliyun") == {"code": 0, "msg": "接收成功"}
    assert acknowledgement("tencent") == {"result": 0, "errmsg": "OK"}


def test_an_unknown_provider_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="carrier-pigeon"):
        parse_replies("carrier-pigeon", b"[]")
    with pytest.raises(ValueError, match="carrier-pigeon"):
        acknowledgement("carrier-pigeon")
