"""Decrypted callback XML (the documented samples) → canonical events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from smr.inbound.wecom import MalformedCallback, translate
from tests.unit.inbound.wecom_support import fixture

T0 = datetime.fromtimestamp(1403610513, UTC)
ADDED = "woAJ2GCAAAXtWyujaWJHDDGi0mAAAA"
DELETED = "woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA"
CHAT = "wrx7HUARsKwGRaQBVKPBTcEyzdHA4HrQ"
FLAT_MEMBERS = ["wmEJiCwAAA9KG2qlSq6rKwASSgAAAA", "wmEJiCwAAA9KG2qlSq6rKwBBBBBBB"]


def summary(name: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(type, contact, data) of each event a fixture translates to."""
    return [
        (e.type, e.contact.model_dump(exclude_defaults=True), e.data)
        for e in translate(fixture(name)).events
    ]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "add_external_contact.xml",
            [
                (
                    "contact.added",
                    {"wecom_userid": ADDED, "attributes": {"wecom_owner": "zhangsan"}},
                    {
                        "staff": "zhangsan",
                        "half": False,
                        "state": "teststate",
                        "welcome_code": "WELCOMECODE",
                    },
                )
            ],
        ),
        (
            "add_half_external_contact.xml",
            [
                (
                    "contact.added",
                    {"wecom_userid": ADDED, "attributes": {"wecom_owner": "zhangsan"}},
                    {
                        "staff": "zhangsan",
                        "half": True,
                        "state": "teststate",
                        "welcome_code": "WELCOMECODE",
                    },
                )
            ],
        ),
        (
            "edit_external_contact.xml",
            [("contact.edited", {"wecom_userid": ADDED}, {"staff": "zhangsan"})],
        ),
        (
            "del_external_contact.xml",
            [("contact.deleted", {"wecom_userid": DELETED}, {"by": "staff", "staff": "zhangsan"})],
        ),
        (
            "del_follow_user.xml",
            [
                (
                    "contact.deleted",
                    {"wecom_userid": "wmFOeKDQAAuIIoxInKmpVmhxjrN3tHqA"},
                    {"by": "customer", "staff": "ycg", "state": "YVbXo-8Rd3kMyAeF"},
                )
            ],
        ),
        (
            "chat_add_member_items.xml",
            [
                ("group.joined", {"wecom_userid": m}, {"chat_id": CHAT, "join_scene": 1})
                for m in ("Jack", "Rose")
            ],
        ),
        (
            "chat_add_member_flat.xml",
            [
                (
                    "group.joined",
                    {"wecom_userid": m},
                    {"chat_id": "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA", "join_scene": 1},
                )
                for m in FLAT_MEMBERS
            ],
        ),
        (
            "chat_del_member.xml",
            [
                (
                    "group.left",
                    {"wecom_userid": FLAT_MEMBERS[0]},
                    {"chat_id": CHAT, "quit_scene": 1},
                )
            ],
        ),
    ],
)
def test_callback_becomes_events(name: str, expected: list[Any]) -> None:
    assert summary(name) == expected


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("del_external_contact_transfer.xml", "transfer"),
        ("chat_create.xml", "no contact"),
        ("chat_dismiss.xml", "no contact"),
        ("chat_change_name.xml", "ignores"),
        ("chat_add_member_no_list.xml", "groupchat/get"),
        ("msgaudit_notify.xml", "not a callback SMR handles"),
        ("text_message.xml", "not a callback SMR handles"),
    ],
)
def test_callback_is_acknowledged_without_events(name: str, reason: str) -> None:
    translation = translate(fixture(name))

    assert translation.events == ()
    assert translation.kf_pull is None
    assert translation.ignored is not None
    assert reason in translation.ignored


def test_kf_callback_asks_for_a_pull_and_hides_its_token() -> None:
    translation = translate(fixture("kf_msg_or_event.xml"))

    assert translation.events == ()
    assert translation.kf_pull is not None
    assert translation.kf_pull.open_kfid == "wkxxxxxxx"
    assert translation.kf_pull.token == "ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR"
    assert translation.kf_pull.token not in repr(translation)


def test_events_carry_the_callback_time() -> None:
    (event,) = translate(fixture("add_external_contact.xml")).events

    assert event.occurred_at == T0


def test_keys_are_stable_and_distinct() -> None:
    def keys(name: str) -> list[str]:
        return [e.id for e in translate(fixture(name)).events]

    add, again = keys("add_external_contact.xml"), keys("add_external_contact.xml")
    half = keys("add_half_external_contact.xml")
    members = keys("chat_add_member_items.xml")
    everything = add + half + keys("edit_external_contact.xml") + members

    assert add == again
    assert add[0].startswith("add_external_contact:")
    assert all(k.startswith("add_member:") for k in members)
    assert len(set(everything)) == len(everything) == 5
    assert all(len(k) <= 200 for k in everything)


def test_another_staff_adding_the_same_customer_is_another_event() -> None:
    xml = fixture("add_external_contact.xml")
    other = xml.replace("zhangsan", "lisi")

    assert translate(xml).events[0].id != translate(other).events[0].id


def test_member_list_encodings_agree() -> None:
    items = fixture("chat_add_member_flat.xml").replace(
        f"<![CDATA[{','.join(FLAT_MEMBERS)}]]>",
        "".join(f"<Item>{m}</Item>" for m in FLAT_MEMBERS),
    )

    assert translate(items).events == translate(fixture("chat_add_member_flat.xml")).events


def test_optional_fields_may_be_missing_or_empty() -> None:
    xml = (
        fixture("add_external_contact.xml")
        .replace("<State><![CDATA[teststate]]></State>", "<State></State>")
        .replace("\t<WelcomeCode><![CDATA[WELCOMECODE]]></WelcomeCode>\n", "")
    )

    (event,) = translate(xml).events

    assert event.data == {"staff": "zhangsan", "half": False}


@pytest.mark.parametrize(
    ("name", "old", "new", "problem"),
    [
        ("add_external_contact.xml", f"<![CDATA[{ADDED}]]>", "", "<ExternalUserID>"),
        ("del_follow_user.xml", "<UserID><![CDATA[ycg]]></UserID>", "", "<UserID>"),
        ("add_external_contact.xml", "1403610513", "yesterday", "Unix timestamp"),
        ("add_external_contact.xml", ADDED, "x" * 201, "valid event"),
        ("chat_del_member.xml", f"<![CDATA[{CHAT}]]>", "", "<ChatId>"),
        ("kf_msg_or_event.xml", "<OpenKfId><![CDATA[wkxxxxxxx]]></OpenKfId>", "", "<OpenKfId>"),
        ("add_external_contact.xml", "</xml>", "", "well-formed"),
    ],
)
def test_malformed_callbacks(name: str, old: str, new: str, problem: str) -> None:
    xml = fixture(name)
    assert old in xml

    with pytest.raises(MalformedCallback, match=problem):
        translate(xml.replace(old, new))
