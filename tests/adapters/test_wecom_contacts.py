"""The customer's tags and details in WeCom: a tag step on tags mapped in policies.yaml's
``wecom_tags`` plans one mark_tag delivery, carried out as the owner staff's tags; the details
externalcontact/get gives are read for the staff the callback names."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import respx
from pydantic import SecretStr

from adapters.wecom import WeComClient, WeComTags
from adapters.wecom.contacts import read_profile
from smr.channels import (
    ContactProfile,
    OutboundMessage,
    PermanentSendError,
    RetriableSendError,
    SendError,
    SendResult,
    SkippedSend,
)
from smr.inbound.wecom import with_profile
from smr.playbooks import TagEffect
from smr.schemas import EventIn
from smr.services.plan import TAG_CHANNEL, tag_mirror
from tests.adapters import wecom_fake as fake
from tests.helpers import FakeClock

SECRET = SecretStr(fake.SECRET)
CORP_TAGS = {"VIP": "etVIP", "新客": "etNEW"}


@pytest.fixture
async def client() -> AsyncIterator[WeComClient]:
    c = WeComClient(corp_id=fake.CORP_ID, base_url=fake.BASE, timeout=5)
    yield c
    await c.aclose()


def marking(add: str = "etVIP", remove: str = "", **recipient: str) -> OutboundMessage:
    recipient = recipient or {"wecom_userid": "wm-1", "owner_staff": "zhangsan"}
    return OutboundMessage(
        delivery_id="dl_tag_1",
        channel=TAG_CHANNEL,
        category="service",
        contact_id="ct_1",
        recipient=recipient,
        text="+VIP",
        params={"add_tag": add, "remove_tag": remove},
    )


def test_only_mapped_tags_are_mirrored() -> None:
    effect = TagEffect("steps[2]", ("VIP", "回头客"), ("新客", "潜客"))

    mirror = tag_mirror(effect, CORP_TAGS)

    assert mirror is not None
    assert (mirror.step_path, mirror.channel, mirror.category) == (
        "steps[2]",
        TAG_CHANNEL,
        "service",
    )
    assert mirror.params == {"add_tag": "etVIP", "remove_tag": "etNEW"}
    assert mirror.text == "+VIP -新客"


def test_a_tag_step_without_mapped_tags_plans_nothing() -> None:
    assert tag_mirror(TagEffect("steps[0]", ("回头客",), ()), CORP_TAGS) is None
    assert tag_mirror(TagEffect("steps[0]", ("VIP",), ()), {}) is None


async def test_mark_tag_adds_and_removes_as_the_owner_staff(
    client: WeComClient, clock: FakeClock, respx_mock: respx.MockRouter
) -> None:
    fake.token_route(respx_mock)
    route = fake.api(respx_mock, "externalcontact/mark_tag").mock(return_value=fake.ok())

    result = await WeComTags(client, SECRET, clock=clock).send(marking("etVIP", "etNEW"))

    assert isinstance(result, SendResult)
    assert fake.body(route.calls[0]) == {
        "userid": "zhangsan",
        "external_userid": "wm-1",
        "add_tag": ["etVIP"],
        "remove_tag": ["etNEW"],
    }


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (fake.err(40068, "invalid tagid"), PermanentSendError),
        (fake.err(84061, "not external contact"), PermanentSendError),
        (fake.err(45009, "api freq out of limit"), RetriableSendError),
        (httpx.Response(502), RetriableSendError),
    ],
    ids=["unknown-tag", "not-a-customer", "throttled", "http-502"],
)
async def test_mark_tag_answers(
    client: WeComClient,
    clock: FakeClock,
    respx_mock: respx.MockRouter,
    answer: httpx.Response,
    outcome: type[SendError],
) -> None:
    fake.token_route(respx_mock)
    fake.api(respx_mock, "externalcontact/mark_tag").mock(return_value=answer)

    with pytest.raises(outcome) as raised:
        await WeComTags(client, SECRET, clock=clock).send(marking())

    assert raised.value.response


@pytest.mark.respx(assert_all_called=False)
@pytest.mark.parametrize("missing", ["owner_staff", "wecom_userid"])
async def test_mark_tag_without_staff_or_customer_is_missing_identity(
    client: WeComClient, clock: FakeClock, respx_mock: respx.MockRouter, missing: str
) -> None:
    route = fake.api(respx_mock, "externalcontact/mark_tag")
    recipient = {"wecom_userid": "wm-1", "owner_staff": "zhangsan"}
    del recipient[missing]

    with pytest.raises(SkippedSend) as raised:
        await WeComTags(client, SECRET, clock=clock).send(marking(**recipient))

    assert raised.value.reason == "missing_identity"
    assert not route.called


def test_a_profile_reads_the_callbacks_staff_entry_only() -> None:
    answer = {
        "external_contact": {"name": "李四"},
        "follow_user": [
            {"userid": "lisi", "remark": "别人的备注", "remark_mobiles": ["13900000000"]},
            {"userid": "zhangsan", "description": "采购", "tags": [{"tag_name": "VIP"}]},
        ],
    }

    profile = read_profile(answer, staff="zhangsan")

    assert profile == ContactProfile(
        name="李四", phone=None, attributes={"wecom_description": "采购", "wecom_tags": ["VIP"]}
    )
    assert read_profile({}, staff="zhangsan") == ContactProfile()


def test_a_remark_mobile_that_is_not_a_phone_is_left_out() -> None:
    event = EventIn.model_validate(
        {
            "id": "k",
            "type": "contact.edited",
            "occurred_at": "2026-11-23T10:00:00+08:00",
            "contact": {"wecom_userid": "wm-1"},
        }
    )

    kept = with_profile(event, ContactProfile(name="李四", phone="call me", attributes={"a": 1}))

    assert kept.contact.identities() == {"wecom_userid": "wm-1"}
    assert (kept.contact.name, kept.contact.attributes) == ("李四", {"a": 1})


def test_a_profile_with_text_no_database_holds_is_read_with_it_replaced() -> None:
    answer = {
        "external_contact": {"name": "李\x00四"},
        "follow_user": [
            {"userid": "zhangsan", "remark": "\ud800备注", "tags": [{"tag_name": "V\x00"}]}
        ],
    }

    profile = read_profile(answer, staff="zhangsan")

    assert profile == ContactProfile(
        name="李\ufffd四",
        attributes={"wecom_remark": "\ufffd备注", "wecom_tags": ["V\ufffd"]},
    )
