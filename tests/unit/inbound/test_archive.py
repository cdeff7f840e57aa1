"""Chat-archive pushes (会话内容存档): the signature, the body's shape, and who each message is
from and for."""

from __future__ import annotations

import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from smr.errors import InvalidInput
from smr.inbound import archive
from smr.inbound.archive import Ignored, SignatureError, sign, verify
from smr.schemas import EventIn

SECRET = "archive-secret"
NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
STAMP = int(NOW.timestamp())
STAFF, CUSTOMER = "XuJinSheng", "wmAJ2GCAAAXtWyujaWJHDDGi0mACAAAA"


def message(**fields: Any) -> dict[str, Any]:
    """The official sample (a text message), with ``fields`` changed."""
    sample = {
        "msgid": "CAQQluDa4QUY0On2rYSAgAMgzPrShAE=",
        "action": "send",
        "from": CUSTOMER,
        "tolist": [STAFF],
        "roomid": "",
        "msgtime": 1547087894783,
        "msgtype": "text",
        "text": {"content": "这个多少钱"},
    }
    return {**sample, **fields}


def translate(*messages: dict[str, Any]) -> list[archive.Outcome]:
    return archive.translate(archive.parse({"messages": list(messages)}))


def only_event(*messages: dict[str, Any]) -> EventIn:
    [outcome] = translate(*messages)
    assert isinstance(outcome, EventIn), outcome
    return outcome


# The signature.


def test_the_signature_is_the_documented_recipe() -> None:
    body = b'{"messages": []}'
    mac = hmac.new(SECRET.encode(), f"{STAMP}.".encode() + body, "sha256")
    expected = "sha256=" + mac.hexdigest()
    assert sign(SECRET, body, STAMP) == expected
    verify(SECRET, body, timestamp=str(STAMP), signature=expected, now=NOW)
    verify(
        SECRET, body, timestamp=str(STAMP + 299), signature=sign(SECRET, body, STAMP + 299), now=NOW
    )


@pytest.mark.parametrize(
    ("timestamp", "signature", "message"),
    [
        (None, "sha256=00", "headers are required"),
        (str(STAMP), None, "headers are required"),
        ("", "", "headers are required"),
        ("1.5", "sha256=00", "must be unix seconds"),
        ("²", "sha256=00", "must be unix seconds"),
        (str(STAMP - 301), "from-stamp", "more than 5 minutes"),
        (str(STAMP + 301), "from-stamp", "more than 5 minutes"),
        ("9" * 12, "from-stamp", "more than 5 minutes"),
        (str(STAMP), "sha256=" + "0" * 64, "does not verify"),
        (str(STAMP), "wrong-secret", "does not verify"),
        (str(STAMP), "other-body", "does not verify"),
    ],
)
def test_a_bad_signature_is_refused(
    timestamp: str | None, signature: str | None, message: str
) -> None:
    body = b'{"messages": []}'
    if signature == "from-stamp":
        signature = sign(SECRET, body, int(str(timestamp)))
    elif signature == "wrong-secret":
        signature = sign("another", body, STAMP)
    elif signature == "other-body":
        signature = sign(SECRET, body + b" ", STAMP)
    with pytest.raises(SignatureError, match=message) as caught:
        verify(SECRET, body, timestamp=timestamp, signature=signature, now=NOW)
    assert caught.value.status == 401


# The body.


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": [message()], "extra": 1}, "extra"),
        ({"messages": [message()] * 1001}, "messages"),
        ({"messages": [message(msgtime="soon")]}, "messages[0].msgtime"),
        ({"messages": [message(msgtime=-1)]}, "messages[0].msgtime"),
        ({"messages": [message(msgtime=4_102_444_800_000)]}, "messages[0].msgtime"),
        (
            {"messages": [message(), {k: v for k, v in message().items() if k != "from"}]},
            "messages[1].from",
        ),
        ({"messages": [message(tolist="XuJinSheng")]}, "messages[0].tolist"),
        ({"messages": [message(action="edit")]}, "messages[0].action"),
        ({"messages": [{"msgid": "m"}]}, "messages[0].action"),
        ({"messages": [message(msgid="x" * 191)]}, "messages[0].msgid"),
        ({"messages": [message(text=None)]}, "messages[0].text"),
        ({"messages": [message(text={"content": 5})]}, "messages[0].text.content"),
        ({"messages": ["hello"]}, "messages[0]"),
    ],
)
def test_a_malformed_push_is_refused_with_the_path_at_fault(body: Any, path: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        archive.parse(body)
    assert path in [e["path"] for e in caught.value.errors], caught.value.errors


def test_recall_and_switch_carry_only_what_they_document() -> None:
    recall = {
        "msgid": "r-1",
        "action": "recall",
        "from": CUSTOMER,
        "tolist": [STAFF],
        "roomid": "",
        "msgtime": 1547087894783,
        "msgtype": "revoke",
        "revoke": {"pre_msgid": "CAQQluDa4QUY0On2rYSAgAMgzPrShAE="},
    }
    switch = {"msgid": "s-1", "action": "switch", "time": 1554119421840, "user": STAFF}
    assert translate(recall, switch) == [
        Ignored("r-1", "action recall: acknowledged, not acted on"),
        Ignored("s-1", "action switch: acknowledged, not acted on"),
    ]


# Who is who.


def test_a_customers_message_in_a_1_1_chat_is_the_customers() -> None:
    event = only_event(message())

    assert (event.id, event.type) == ("archive:CAQQluDa4QUY0On2rYSAgAMgzPrShAE=", "chat.message")
    assert event.contact.wecom_userid == CUSTOMER
    assert event.occurred_at == datetime(2019, 1, 10, 2, 38, 14, 783000, tzinfo=UTC)
    assert event.data == {
        "text": "这个多少钱",
        "msgtype": "text",
        "chat": "single",
        "speaker": "customer",
        "staff": STAFF,
        "chat_id": None,
        "msgid": "CAQQluDa4QUY0On2rYSAgAMgzPrShAE=",
        "source": "archive",
    }


def test_a_staff_message_in_a_1_1_chat_is_for_the_customer_spoken_to() -> None:
    event = only_event(message(**{"from": STAFF, "tolist": ["woCorpCustomer"]}))

    assert event.contact.wecom_userid == "woCorpCustomer"
    assert (event.data["speaker"], event.data["staff"], event.data["chat"]) == (
        "staff",
        STAFF,
        "single",
    )


def test_a_customers_message_in_a_group_is_that_customers() -> None:
    group = message(roomid="wrjc7bDwAASxc8tZvBErFE02BtPWyAAA", tolist=[STAFF, "wmOther"])
    event = only_event(group)

    assert event.contact.wecom_userid == CUSTOMER
    assert {k: event.data[k] for k in ("chat", "speaker", "staff", "chat_id")} == {
        "chat": "group",
        "speaker": "customer",
        "staff": None,
        "chat_id": "wrjc7bDwAASxc8tZvBErFE02BtPWyAAA",
    }


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (
            {"from": STAFF, "roomid": "wr-1", "tolist": [CUSTOMER, "lisi"]},
            "a staff message in a group speaks to no single customer",
        ),
        ({"from": STAFF, "tolist": ["lisi"]}, "an internal chat: no customer takes part"),
        (
            {"msgtype": "agree", "text": None, "agree": {"userid": CUSTOMER}},
            "msgtype agree: not a message SMR acts on",
        ),
    ],
)
def test_messages_without_one_customer_are_ignored(fields: dict[str, Any], reason: str) -> None:
    assert translate(message(**fields)) == [Ignored(message()["msgid"], reason)]


def test_other_message_types_carry_empty_text_and_their_type() -> None:
    image = message(
        msgtype="image", text=None, image={"sdkfileid": "x", "md5sum": "y", "filesize": 1}
    )
    event = only_event(image)

    assert (event.data["text"], event.data["msgtype"]) == ("", "image")
    assert "image" not in event.data
    assert json.loads(event.model_dump_json())["data"]["speaker"] == "customer"


def test_a_push_keeps_its_order_and_every_message() -> None:
    outcomes = translate(
        message(msgid="a"),
        {"msgid": "b", "action": "switch"},
        message(msgid="c", **{"from": STAFF, "tolist": [CUSTOMER]}),
    )
    assert [o.id if isinstance(o, EventIn) else o.msgid for o in outcomes] == [
        "archive:a",
        "b",
        "archive:c",
    ]
