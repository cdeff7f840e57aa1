"""The bundled welcome playbook end to end against a fake WeCom: an encrypted add_external_contact
callback from a channel code → the source tagged (and mirrored to WeCom's corp tags), the
welcome sent with the callback's WelcomeCode by the priority lane, and the day-3 step of the
SOP a mass-send task for the owner staff."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import select

from smr.models import Delivery
from smr.runtime import Runtime, build_runtime
from tests.adapters import wecom_fake as fake
from tests.conftest import BUNDLED, make_settings
from tests.helpers import FakeClock, auth
from tests.unit.inbound import wecom_support as v

CUSTOMER = "woAJ2GCAAAXtWyujaWJHDDGi0mAAAA"
CORP_TAGS = 'wecom_tags: {新客: etNEWCOMER, "渠道-theatre-lobby": etTHEATRE}\n'


@pytest.fixture
def playbooks_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "playbooks"
    shutil.copytree(BUNDLED, folder)
    policies = folder / "policies.yaml"
    policies.write_text(policies.read_text(encoding="utf-8") + CORP_TAGS, encoding="utf-8")
    return folder


@pytest.fixture
async def runtime(
    database_url: str, playbooks_dir: Path, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Runtime]:
    wecom = fake.with_callbacks()
    settings = make_settings(
        database_url, playbooks_dir, tmp_path / "data", wecom=wecom, dispatch_lanes=1
    )
    rt = build_runtime(settings, clock=clock)
    yield rt
    await rt.aclose()


def added_in_theatre(clock: FakeClock) -> str:
    xml = v.fixture("add_external_contact.xml").replace("teststate", "theatre-lobby")
    return xml.replace("1403610513", str(int(clock.now.timestamp())))


def card_upload(respx_mock: respx.MockRouter) -> respx.Route:
    """media/upload: the welcome's mini-program card cover."""
    answer = fake.ok(type="image", media_id="MEDIA-CARD", created_at="1")
    return fake.api(respx_mock, "media/upload").mock(return_value=answer)


async def channel_rows(runtime: Runtime, channel: str) -> list[Delivery]:
    async with runtime.sessions() as session:
        stmt = select(Delivery).where(Delivery.channel == channel).order_by(Delivery.id)
        return list(await session.scalars(stmt))


@pytest.mark.respx(assert_all_called=False)
async def test_a_channel_code_add_is_tagged_welcomed_and_followed_up(
    client: httpx.AsyncClient,
    runtime: Runtime,
    clock: FakeClock,
    respx_mock: respx.MockRouter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake.token_route(respx_mock)
    welcome = fake.api(respx_mock, "externalcontact/send_welcome_msg").mock(return_value=fake.ok())
    card = card_upload(respx_mock)
    mark = fake.api(respx_mock, "externalcontact/mark_tag").mock(return_value=fake.ok())
    details = respx_mock.get(f"{fake.BASE}/cgi-bin/externalcontact/get").mock(
        return_value=fake.ok(
            external_contact={"external_userid": CUSTOMER, "name": "小王", "type": 1},
            follow_user=[
                {
                    "userid": "zhangsan",
                    "remark": "剧场大堂-小王",
                    "tags": [{"group_name": "来源", "tag_name": "线下", "type": 1}],
                    "remark_mobiles": ["13800138000"],
                    "state": "theatre-lobby",
                }
            ],
        )
    )
    tasks = fake.api(respx_mock, "externalcontact/add_msg_template").mock(
        side_effect=[fake.ok(fail_list=[], msgid=f"msg-day{day}") for day in (1, 3)]
    )
    fake.api(respx_mock, "externalcontact/get_groupmsg_task").mock(
        return_value=fake.ok(task_list=[{"userid": "zhangsan", "status": 2}], next_cursor="")
    )
    # zhangsan confirms each task half an hour after it is created.
    confirmed = {f"msg-day{day}": datetime(2026, 11, day + 23, 2, 30, tzinfo=UTC) for day in (1, 3)}

    def send_result(request: httpx.Request) -> httpx.Response:
        at = int(confirmed[json.loads(request.content)["msgid"]].timestamp())
        row = {"external_userid": CUSTOMER, "userid": "zhangsan", "status": 1, "send_time": at}
        return fake.ok(send_list=[row], next_cursor="")

    fake.api(respx_mock, "externalcontact/get_groupmsg_send_result").mock(side_effect=send_result)

    async def no_tick(**_: Any) -> int:
        raise AssertionError("the welcome must not wait for a regular tick")

    # The callback: verified, decrypted, stored; the welcome goes by the priority lane.
    with monkeypatch.context() as patched:
        patched.setattr(runtime.dispatcher, "tick", no_tick)
        params, body = v.signed_post(v.official(), added_in_theatre(clock))
        response = await client.post("/v1/wecom/callback", params=params, content=body)
        assert (response.status_code, response.text) == (200, "success")
        await runtime.settle()

    # Before the event is stored, WeCom says who the customer is: the welcome has their name.
    assert details.calls[0].request.url.params["external_userid"] == CUSTOMER
    assert welcome.call_count == 1
    sent = fake.body(welcome.calls[0])
    assert sent["welcome_code"] == "WELCOMECODE"
    assert sent["text"]["content"].startswith("小王您好，欢迎来到某某旗舰店")
    # With the newcomer mini-program card, its cover uploaded from the playbooks' media/.
    assert sent["attachments"] == [
        {
            "msgtype": "miniprogram",
            "miniprogram": {
                "title": "新人礼包：领 20 元无门槛券",
                "pic_media_id": "MEDIA-CARD",
                "appid": "wx8bd80126147dfAAA",
                "page": "/pages/newcomer/index",
            },
        }
    ]
    assert card.calls[0].request.url.params["type"] == "image"
    found = await client.get("/v1/contacts", params={"wecom_userid": CUSTOMER}, headers=auth())
    contact = found.json()
    assert {"新客", "渠道-theatre-lobby"} <= set(contact["tags"])
    # The remark mobile makes them the contact the shop's orders for that phone reach.
    assert contact["identities"] == {"phone": "13800138000", "wecom_userid": CUSTOMER}
    assert contact["attributes"]["wecom_remark"] == "剧场大堂-小王"
    assert contact["attributes"]["wecom_tags"] == ["线下"]

    # The tags mirror to WeCom's corp tags with the next tick, as the owner staff's.
    await runtime.tick()
    assert [fake.body(call) for call in mark.calls] == [
        {"userid": "zhangsan", "external_userid": CUSTOMER, "add_tag": ["etNEWCOMER"]},
        {"userid": "zhangsan", "external_userid": CUSTOMER, "add_tag": ["etTHEATRE"]},
    ]

    # Day 1 at 10:00, then day 3: each a mass-send task the owner staff confirms, and the
    # report of it records when zhangsan sent it.
    for day, text in ((1, "新人专享"), (3, "洗面奶老客回购率")):
        clock.now = datetime(2026, 11, day + 23, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai
        await runtime.tick()
        task = fake.body(tasks.calls[-1])
        assert task["sender"] == "zhangsan"
        assert task["external_userid"] == [CUSTOMER]
        assert text in task["text"]["content"]
        clock.advance(minutes=40)
        await runtime.tick()
    assert tasks.call_count == 2

    follow_ups = await channel_rows(runtime, "wecom")
    assert [(d.status, d.vendor_ref, d.sent_at) for d in follow_ups] == [
        ("sent", "msg-day1", confirmed["msg-day1"]),
        ("sent", "msg-day3", confirmed["msg-day3"]),
    ]
    assert [d.status for d in await channel_rows(runtime, "wecom_tag")] == ["sent", "sent"]


@pytest.mark.respx(assert_all_called=False)
async def test_without_the_customers_details_the_welcome_still_goes(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock, respx_mock: respx.MockRouter
) -> None:
    fake.token_route(respx_mock)
    welcome = fake.api(respx_mock, "externalcontact/send_welcome_msg").mock(return_value=fake.ok())
    card_upload(respx_mock)
    respx_mock.get(f"{fake.BASE}/cgi-bin/externalcontact/get").mock(
        return_value=fake.err(84061, "not external contact")
    )

    params, body = v.signed_post(v.official(), added_in_theatre(clock))
    response = await client.post("/v1/wecom/callback", params=params, content=body)
    await runtime.settle()

    assert response.text == "success"
    assert fake.body(welcome.calls[0])["text"]["content"].startswith("亲您好")
    found = await client.get("/v1/contacts", params={"wecom_userid": CUSTOMER}, headers=auth())
    assert found.json()["identities"] == {"wecom_userid": CUSTOMER}
