"""The bundled private-domain tactics end to end, against a fake WeCom (respx) on every test
database: customer groups synced from WeCom and tagged 打卡群 get the 09:00 check-in post (one
group mass-send task for the owner, with the check-in mini-program card), the Moments calendar
posts at its golden hours for the corp, and customers' likes and comments read back by the
half-hourly poll tag the third interaction 活跃粉丝.

The playbooks are the shipped folder (copied), so this proves the shipped tactics work."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import respx
from sqlalchemy import select

from smr.models import Delivery
from smr.runtime import Runtime, build_runtime
from tests.adapters import wecom_fake as fake
from tests.conftest import BUNDLED, make_settings
from tests.helpers import FakeClock, auth

CARD = (BUNDLED / "media" / "card.png").read_bytes()
APPID = "wx8bd80126147dfAAA"
SHANGHAI = ZoneInfo("Asia/Shanghai")
#: WeCom's customer groups: two of zhangsan's, one of lisi's.
GROUPS = {"wrDaka1": "zhangsan", "wrDaka2": "zhangsan", "wrChat": "lisi"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 22, 23, 0, tzinfo=UTC))  # 07:00 in Asia/Shanghai


def shanghai(clock: FakeClock, hhmm: str) -> None:
    """Move the clock to ``hhmm`` (Asia/Shanghai) on 2026-11-23."""
    hour, minute = (int(part) for part in hhmm.split(":"))
    clock.now = datetime(2026, 11, 23, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


@pytest.fixture
def playbooks_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "playbooks"
    shutil.copytree(BUNDLED, folder)
    shutil.rmtree(folder / "channel_codes")  # codes are not what this test is about
    return folder


@pytest.fixture
async def runtime(
    database_url: str, playbooks_dir: Path, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Runtime]:
    settings = make_settings(
        database_url, playbooks_dir, tmp_path / "data", wecom=fake.settings(), dispatch_lanes=1
    )
    rt = build_runtime(settings, clock=clock)
    assert rt.groups is not None
    rt.groups.fetch_delay = 0
    yield rt
    await rt.aclose()


@dataclass
class FakeWeCom:
    """WeCom's side: the groups, the Moments tasks made so far and what customers did."""

    router: respx.MockRouter
    moments: dict[str, str] = field(default_factory=dict)  # jobid → moment_id
    likes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # moment_id → likes
    comments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def route(self, api: str) -> respx.Route:
        return self.router.routes[api]

    def calls(self, api: str) -> list[dict[str, Any]]:
        return [fake.body(call) for call in self.route(api).calls]

    def install(self) -> None:
        fake.token_route(self.router)
        self._post("externalcontact/groupchat/list").mock(
            return_value=fake.ok(
                group_chat_list=[{"chat_id": c, "status": 0} for c in GROUPS], next_cursor=""
            )
        )
        self._post("externalcontact/groupchat/get").mock(side_effect=self._group)
        self._post("media/upload").mock(
            return_value=fake.ok(type="image", media_id="MEDIA-CARD", created_at="1")
        )
        self._post("media/upload_attachment").mock(
            return_value=fake.ok(type="image", media_id="MOMENT-CARD", created_at="1")
        )
        self._post("externalcontact/add_msg_template").mock(
            return_value=fake.ok(fail_list=[], msgid="msg-checkin")
        )
        self._post("externalcontact/get_groupmsg_task").mock(
            return_value=fake.ok(task_list=[{"userid": "zhangsan", "status": 2}], next_cursor="")
        )
        self._post("externalcontact/get_groupmsg_send_result").mock(side_effect=self._group_sent)
        self._post("externalcontact/add_moment_task").mock(side_effect=self._add_moment)
        self.router.get(
            f"{fake.BASE}/cgi-bin/externalcontact/get_moment_task_result",
            name="externalcontact/get_moment_task_result",
        ).mock(side_effect=self._moment_made)
        self._post("externalcontact/get_moment_task").mock(
            return_value=fake.ok(
                task_list=[{"userid": "zhangsan", "publish_status": 1}], next_cursor=""
            )
        )
        self._post("externalcontact/get_moment_list").mock(side_effect=self._moment_list)
        self._post("externalcontact/get_moment_comments").mock(side_effect=self._engagement)
        self._post("externalcontact/group_welcome_template/add").mock(
            return_value=fake.ok(template_id="tmpl-group-welcome")
        )

    def _post(self, api: str) -> respx.Route:
        return self.router.post(f"{fake.BASE}/cgi-bin/{api}", name=api)

    def _group(self, request: httpx.Request) -> httpx.Response:
        chat_id = json.loads(request.content)["chat_id"]
        owner = GROUPS[chat_id]
        members = [
            {"userid": owner, "type": 1, "join_time": 1763800000, "join_scene": 1},
            {"userid": "wm-a", "type": 2, "join_time": 1763800100, "join_scene": 3},
        ]
        chat = {
            "chat_id": chat_id,
            "name": f"会员福利群{chat_id[-1]}",
            "owner": owner,
            "create_time": 1763800000,
            "member_list": members,
            "admin_list": [],
            "member_version": "v1",
        }
        return fake.ok(group_chat=chat)

    def _group_sent(self, request: httpx.Request) -> httpx.Response:
        rows = [
            {"chat_id": c, "userid": "zhangsan", "status": 1, "send_time": 1763860000}
            for c in ("wrDaka1", "wrDaka2")
        ]
        return fake.ok(send_list=rows, next_cursor="")

    def _add_moment(self, request: httpx.Request) -> httpx.Response:
        jobid = f"job-{len(self.moments) + 1}"
        self.moments[jobid] = f"mom-{len(self.moments) + 1}"
        return fake.ok(jobid=jobid)

    def _moment_made(self, request: httpx.Request) -> httpx.Response:
        moment_id = self.moments[request.url.params["jobid"]]
        result = {"errcode": 0, "errmsg": "ok", "moment_id": moment_id}
        return fake.ok(status=3, type="add_moment_task", result=result)

    def _moment_list(self, request: httpx.Request) -> httpx.Response:
        listed = [{"moment_id": m, "creator": "", "create_type": 0} for m in self.moments.values()]
        return fake.ok(moment_list=listed, next_cursor="")

    def _engagement(self, request: httpx.Request) -> httpx.Response:
        moment_id = json.loads(request.content)["moment_id"]
        return fake.ok(
            like_list=self.likes.get(moment_id, []), comment_list=self.comments.get(moment_id, [])
        )


@pytest.fixture
def wecom(respx_mock: respx.MockRouter) -> FakeWeCom:
    faked = FakeWeCom(respx_mock)
    faked.install()
    return faked


async def deliveries(runtime: Runtime, channel: str) -> list[Delivery]:
    async with runtime.sessions() as session:
        stmt = select(Delivery).where(Delivery.channel == channel).order_by(Delivery.contact_id)
        return list(await session.scalars(stmt))


async def tick(runtime: Runtime) -> None:
    """A tick and what it started in the background; then the events those accepted (the
    moments poll's likes and comments) processed, as a worker would shortly after."""
    await runtime.tick()
    await runtime.settle()
    await runtime.process_pending()
    await runtime.settle()


async def contact_by(client: httpx.AsyncClient, wecom_userid: str) -> dict[str, Any]:
    found = await client.get("/v1/contacts", params={"wecom_userid": wecom_userid}, headers=auth())
    assert found.status_code == 200, found.text
    response = await client.get(f"/v1/contacts/{found.json()['id']}", headers=auth())
    assert response.status_code == 200, response.text
    contact: dict[str, Any] = response.json()
    return contact


async def test_groups_check_in_moments_calendar_and_engagement_layering(
    runtime: Runtime, client: httpx.AsyncClient, clock: FakeClock, wecom: FakeWeCom
) -> None:
    await runtime.start()
    # group-welcome.yaml's template is made in WeCom for the staff to apply to their groups.
    assert runtime.group_welcome is not None
    await runtime.group_welcome.settle()
    (template,) = wecom.calls("externalcontact/group_welcome_template/add")
    assert template["text"]["content"].startswith("欢迎 %NICKNAME% 入群🎉 群规：1. 禁止广告")
    assert template["notify"] == 1

    # (a) The first tick of the day syncs the customer groups from WeCom.
    await tick(runtime)
    listed = await client.get("/v1/groups", headers=auth())
    assert sorted((g["chat_id"], g["owner"]) for g in listed.json()["items"]) == sorted(
        GROUPS.items()
    )
    assert sorted(wecom.calls("externalcontact/groupchat/get"), key=str) == [
        {"chat_id": c, "need_name": 1} for c in sorted(GROUPS)
    ]

    # (b) Ops tag zhangsan's two groups as check-in groups.
    for chat_id in ("wrDaka1", "wrDaka2"):
        tagged = await client.post(
            f"/v1/groups/{chat_id}/tags", json={"add": ["打卡群"]}, headers=auth()
        )
        assert tagged.status_code == 200, tagged.text
        assert tagged.json()["tags"] == ["打卡群"]

    # (d) 07:30, the first golden hour: the Moments calendar posts once, for the corp.
    shanghai(clock, "07:30")
    await tick(runtime)
    (task,) = wecom.calls("externalcontact/add_moment_task")
    assert task == {
        "text": {
            "content": "早安☀️ 洗脸这一步做对了，一整天都清爽。 本周主推：氨基酸洗面奶，到手价 ¥99"
        },
        "attachments": [
            {
                "msgtype": "link",
                "link": {
                    "title": "氨基酸洗面奶",
                    "url": "https://example.com/item/FACE-WASH",
                    "media_id": "MOMENT-CARD",
                },
            }
        ],
    }
    (moment_upload,) = wecom.route("media/upload_attachment").calls
    assert moment_upload.request.url.params["media_type"] == "image"
    assert CARD in moment_upload.request.content

    # (c) 09:00: one group mass-send task for zhangsan's two 打卡群 groups; lisi's has none.
    shanghai(clock, "09:00")
    await tick(runtime)
    (group_task,) = wecom.calls("externalcontact/add_msg_template")
    assert sorted(group_task.pop("chat_id_list")) == ["wrDaka1", "wrDaka2"]
    assert group_task == {
        "chat_type": "group",
        "sender": "zhangsan",
        "text": {
            "content": "早上好☀️ 今日打卡开始啦！点下方小程序打卡领 10 积分，满 100 积分可兑换小样。"
        },
        "attachments": [
            {
                "msgtype": "miniprogram",
                "miniprogram": {
                    "title": "今日打卡 +10 积分",
                    "pic_media_id": "MEDIA-CARD",
                    "appid": APPID,
                    "page": "/pages/checkin/index",
                },
            }
        ],
    }
    (card_upload,) = wecom.route("media/upload").calls
    assert card_upload.request.url.params["type"] == "image"
    assert CARD in card_upload.request.content

    shanghai(clock, "09:40")  # zhangsan has confirmed the task
    await tick(runtime)
    posts = await deliveries(runtime, "wecom_group")
    assert [(d.contact_id, d.status, d.vendor_ref) for d in posts] == [
        ("group:wrDaka1", "sent", "msg-checkin"),
        ("group:wrDaka2", "sent", "msg-checkin"),
    ]

    shanghai(clock, "11:30")  # the second golden hour
    await tick(runtime)
    assert len(wecom.calls("externalcontact/add_moment_task")) == 2
    shanghai(clock, "11:35")
    await tick(runtime)
    moments = await deliveries(runtime, "moment")
    assert [(d.contact_id, d.status) for d in moments] == [("corp", "sent"), ("corp", "sent")]

    # (e) Customers react: wm-a likes both posts and comments on one, wm-b likes one.
    wecom.likes = {
        "mom-1": [
            {"external_userid": "wm-a", "create_time": 1763870000},
            {"external_userid": "wm-b", "create_time": 1763870100},
        ],
        "mom-2": [{"external_userid": "wm-a", "create_time": 1763871000}],
    }
    wecom.comments = {"mom-1": [{"external_userid": "wm-a", "create_time": 1763870200}]}
    shanghai(clock, "12:00")
    await tick(runtime)

    active = await contact_by(client, "wm-a")
    assert "活跃粉丝" in active["tags"]
    assert active["attributes"]["moment_hits"] == 3
    assert active["attributes"]["moment_since"] == datetime(2026, 11, 23).toordinal()
    once = await contact_by(client, "wm-b")
    assert "活跃粉丝" not in once["tags"]
    assert once["attributes"]["moment_hits"] == 1
