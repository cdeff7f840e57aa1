"""Messages pulled with kf/sync_msg become chat.message events that a database can store."""

from __future__ import annotations

from adapters.wecom.kf_sync import event_of
from smr.edge import unstorable


def message(text: str, msgid: str = "m-1") -> dict[str, object]:
    return {
        "msgid": msgid,
        "open_kfid": "wk-1",
        "external_userid": "wm-1",
        "send_time": 1_780_000_000,
        "origin": 3,
        "msgtype": "text",
        "text": {"content": text},
    }


def test_a_pulled_message_with_text_no_database_holds_keeps_the_rest_of_its_text() -> None:
    event = event_of(message("价格\x00多少\ud800", msgid="m\x00-1"))

    assert event is not None
    assert event.data["text"] == "价格\ufffd多少\ufffd"
    assert event.id == "kf:m\ufffd-1"
    dumped = event.model_dump_json()
    assert unstorable(dumped) is None
    assert "\\u0000" not in dumped


def test_a_pulled_message_as_it_usually_comes_is_unchanged() -> None:
    event = event_of(message("这个多少钱？"))

    assert event is not None
    assert (event.id, event.data["text"], event.data["channel"]) == (
        "kf:m-1",
        "这个多少钱？",
        "wecom_kf",
    )


def test_a_pulled_message_says_it_is_the_customer_in_a_1_1_chat() -> None:
    event = event_of(message("你好"))

    assert event is not None
    assert (event.data["chat"], event.data["speaker"]) == ("single", "customer")
