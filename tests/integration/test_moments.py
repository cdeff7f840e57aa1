"""Moments end to end on a real database, WeCom faked with respx: a playbook posts on the
``moment`` channel, the task's report makes the delivery sent, and the half-hourly engagement
poll turns customers' likes and comments into events another playbook acts on."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import func, select

from smr.models import Delivery, Event, MomentEngagement
from smr.runtime import Runtime, build_runtime
from smr.services.moments import MomentEngagementPoll
from tests.adapters import wecom_fake as fake
from tests.conftest import make_settings
from tests.helpers import INGEST, FakeClock, auth

PLAYBOOKS = {
    "policies.yaml": "timezone: Asia/Shanghai\nwecom_tags: {会员: etMEMBER}\n",
    "moment-post.yaml": """
id: moment-post
name: 新品朋友圈
mode: parallel
trigger: {event: moment.post}
steps:
  - send: {channel: moment, category: service, text: "新品上市", params: {tags: 会员}}
""",
    "liked.yaml": """
id: liked
name: 点赞客户打标签
mode: parallel
trigger: {event: moment.liked}
steps:
  - tag: {add: [点赞客户]}
""",
}
LIST = "externalcontact/get_moment_list"
TASK = "externalcontact/get_moment_task"
COMMENTS = "externalcontact/get_moment_comments"


@pytest.fixture
def playbooks_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "playbooks"
    folder.mkdir()
    for name, text in PLAYBOOKS.items():
        (folder / name).write_text(text.lstrip(), encoding="utf-8")
    return folder


@pytest.fixture
async def runtime(
    database_url: str, playbooks_dir: Path, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Runtime]:
    settings = make_settings(database_url, playbooks_dir, tmp_path / "data", wecom=fake.settings())
    rt = build_runtime(settings, clock=clock)
    yield rt
    await rt.aclose()


@pytest.fixture
def poll(runtime: Runtime) -> MomentEngagementPoll:
    assert runtime.moments is not None
    assert runtime.moments.source is not None  # WeCom's 客户联系 API is configured
    return runtime.moments


@pytest.fixture(autouse=True)
def wecom(respx_mock: respx.MockRouter) -> respx.MockRouter:
    """A corp with one moment (mom-1, published by zhangsan): two customers liked it, one
    commented, and a colleague (a userid) liked it too."""
    fake.token_route(respx_mock)
    named(respx_mock, "externalcontact/add_moment_task").mock(return_value=fake.ok(jobid="job-1"))
    respx_mock.get(f"{fake.BASE}/cgi-bin/externalcontact/get_moment_task_result").mock(
        return_value=fake.ok(status=3, result={"errcode": 0, "errmsg": "ok", "moment_id": "mom-1"})
    )
    named(respx_mock, TASK).mock(
        return_value=fake.ok(
            task_list=[
                {"userid": "zhangsan", "publish_status": 1},
                {"userid": "lisi", "publish_status": 0},
            ],
            next_cursor="",
        )
    )
    named(respx_mock, LIST).mock(
        return_value=fake.ok(moment_list=[{"moment_id": "mom-1", "create_type": 0}], next_cursor="")
    )
    named(respx_mock, COMMENTS).mock(
        return_value=fake.ok(
            like_list=[
                {"external_userid": "wm-a", "create_time": 1764900000},
                {"external_userid": "wm-b", "create_time": 1764900100},
                {"userid": "lisi", "create_time": 1764900200},
            ],
            comment_list=[
                {"external_userid": "wm-a", "create_time": 1764900300},
                {"userid": "wangwu", "create_time": 1764900400},
            ],
        )
    )
    return respx_mock


async def post_moment(runtime: Runtime, client: httpx.AsyncClient, clock: FakeClock) -> None:
    event = {
        "id": "ops-1",
        "type": "moment.post",
        "occurred_at": clock.now.isoformat(),
        "contact": {"shop_customer_id": "ops"},
    }
    response = await client.post("/v1/events", json=event, headers=auth(INGEST))
    assert response.status_code == 202
    await runtime.dispatcher.tick()
    clock.advance(minutes=2)
    await runtime.checker.tick()


async def moment_events(runtime: Runtime) -> dict[str, Event]:
    async with runtime.sessions() as session:
        rows = await session.scalars(select(Event).where(Event.type.like("moment.%")))
        return {e.key: e for e in rows if e.type != "moment.post"}


async def tags_of(client: httpx.AsyncClient, wecom_userid: str) -> list[str]:
    response = await client.get(f"/v1/contacts?wecom_userid={wecom_userid}", headers=auth())
    assert response.status_code == 200, response.text
    contact: dict[str, Any] = response.json()
    return list(contact["tags"])


async def test_a_posted_moment_is_sent_and_its_likes_and_comments_come_back_as_events(
    runtime: Runtime,
    client: httpx.AsyncClient,
    clock: FakeClock,
    poll: MomentEngagementPoll,
    wecom: respx.MockRouter,
) -> None:
    await post_moment(runtime, client, clock)
    async with runtime.sessions() as session:
        (delivery,) = await session.scalars(select(Delivery).where(Delivery.channel == "moment"))
    assert delivery.status == "sent"
    add_call = wecom.routes["externalcontact/add_moment_task"].calls.last
    assert fake.body(add_call) == {
        "text": {"content": "新品上市"},
        "visible_range": {"external_contact_list": {"tag_list": ["etMEMBER"]}},
    }

    await poll.tick()
    await poll.settle()
    await runtime.process_pending()  # the likes and comments the poll accepted

    found = await moment_events(runtime)
    assert sorted(found) == [
        "moment:mom-1:zhangsan:wm-a:comment:1764900300",
        "moment:mom-1:zhangsan:wm-a:like:1764900000",
        "moment:mom-1:zhangsan:wm-b:like:1764900100",
    ]
    like = found["moment:mom-1:zhangsan:wm-a:like:1764900000"]
    assert (like.type, like.source) == ("moment.liked", "wecom")
    assert like.data == {
        "moment_id": "mom-1",
        "staff": "zhangsan",
        "create_time": 1764900000,
        "playbook_id": "moment-post",
        "delivery_id": delivery.id,
    }
    assert found["moment:mom-1:zhangsan:wm-a:comment:1764900300"].type == "moment.commented"
    assert await tags_of(client, "wm-a") == ["点赞客户"]
    assert await tags_of(client, "wm-b") == ["点赞客户"]

    again = await poll.poll()

    assert (again.accepted, again.duplicates) == (0, 3)
    assert len(await moment_events(runtime)) == 3
    response = await client.get("/v1/moments", headers=auth())
    assert response.status_code == 200
    (item,) = response.json()["items"]
    assert {k: item[k] for k in ("status", "moment_id", "published_by", "likes", "comments")} == {
        "status": "published",
        "moment_id": "mom-1",
        "published_by": ["zhangsan"],
        "likes": 2,
        "comments": 1,
    }
    assert (item["playbook_id"], item["delivery_id"]) == ("moment-post", delivery.id)


async def test_the_poll_runs_once_per_half_hour(
    runtime: Runtime, clock: FakeClock, poll: MomentEngagementPoll, wecom: respx.MockRouter
) -> None:
    listed = wecom.routes[LIST]

    for _ in range(2):
        await poll.tick()
        await poll.settle()
    assert listed.call_count == 1
    clock.advance(minutes=30)
    await poll.tick()
    await poll.settle()

    assert listed.call_count == 2
    async with runtime.sessions() as session:
        stored = await session.scalar(select(func.count()).select_from(MomentEngagement))
    assert stored == 3


async def test_a_failed_poll_is_logged_and_the_next_slot_polls_again(
    runtime: Runtime,
    clock: FakeClock,
    poll: MomentEngagementPoll,
    wecom: respx.MockRouter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    listed = wecom.routes[LIST]
    assert listed.return_value is not None
    listed.side_effect = [httpx.Response(500), listed.return_value]

    with caplog.at_level(logging.WARNING, logger="smr.services.moments"):
        await poll.tick()
        await poll.settle()
    assert await moment_events(runtime) == {}
    assert "moments engagement poll" in caplog.text

    clock.advance(minutes=30)
    await poll.tick()
    await poll.settle()

    assert len(await moment_events(runtime)) == 3


def named(mock: respx.MockRouter, api: str) -> respx.Route:
    """POST /cgi-bin/<api>, found again as ``mock.routes[api]``."""
    return mock.post(f"{fake.BASE}/cgi-bin/{api}", name=api)
