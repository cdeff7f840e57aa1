"""Customer group callbacks (change_external_chat) through the ASGI app, against a fake WeCom, on
every test database: create / update / dismiss keep the stored group in step; member changes
apply without groupchat/get when the member versions follow on; group events carry
``event.group``; playbooks see ``contact.groups``."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import select

from smr.db import unit_of_work
from smr.models import Event, Group, GroupMember, MockOutbox
from smr.runtime import Runtime, build_runtime
from tests.adapters import wecom_fake as fake
from tests.adapters.test_wecom_groups import chat, member
from tests.conftest import CORE, make_settings
from tests.helpers import INGEST, FakeClock, auth
from tests.unit.inbound import wecom_support as v

URL = "/v1/wecom/callback"
GET = "externalcontact/groupchat/get"
CHAT = "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"
PLAYBOOKS = {
    "group-welcome.yaml": """
id: group-welcome
name: group-welcome
mode: parallel
trigger: {event: group.joined}
steps:
  - send:
      channel: mock
      category: service
      text: "欢迎加入{{ event.group.name }}（群主 {{ event.group.owner }}，\\
        {{ event.group.member_count }} 人，{{ event.group.tags | join('/') }}）"
""",
    "vip-group-order.yaml": """
id: vip-group-order
name: vip-group-order
mode: parallel
trigger:
  event: order.paid
  if: "contact.groups | length > 0 and '群VIP' in (contact.groups | map(attribute='name') | list)"
steps:
  - send:
      channel: mock
      category: service
      text: "群友专享：{{ contact.groups[0].tags | join(',') }}"
""",
}


@pytest.fixture
def playbooks_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "playbooks"
    shutil.copytree(CORE, folder)
    for name, text in PLAYBOOKS.items():
        (folder / name).write_text(text.lstrip(), encoding="utf-8")
    return folder


@pytest.fixture
async def runtime(
    database_url: str, playbooks_dir: Path, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Runtime]:
    settings = make_settings(
        database_url, playbooks_dir, tmp_path / "data", wecom=fake.with_callbacks()
    )
    rt = build_runtime(settings, clock=clock)
    assert rt.groups is not None
    rt.groups.fetch_delay = 0
    yield rt
    await rt.aclose()


def chat_xml(change: str, chat_id: str = CHAT, *, detail: str = "", **fields: Any) -> str:
    """A decrypted change_external_chat callback; ``members`` as <Item>s, other fields as is."""
    extra = f"<UpdateDetail><![CDATA[{detail}]]></UpdateDetail>" if detail else ""
    for tag, value in fields.items():
        if tag == "members":
            items = "".join(f"<Item>{m}</Item>" for m in value)
            extra += f"<MemChangeList>{items}</MemChangeList>"
        else:
            extra += f"<{tag}>{value}</{tag}>"
    return (
        "<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[sys]]>"
        "</FromUserName><CreateTime>1764990000</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[change_external_chat]]></Event>"
        f"<ChatId><![CDATA[{chat_id}]]></ChatId><ChangeType><![CDATA[{change}]]></ChangeType>"
        f"{extra}</xml>"
    )


async def post(client: httpx.AsyncClient, runtime: Runtime, inner: str, nonce: str = "1") -> None:
    params, body = v.signed_post(v.official(), inner, nonce=nonce)
    response = await client.post(URL, params=params, content=body)
    assert (response.status_code, response.text) == (200, "success")
    await runtime.settle()


def wecom(respx_mock: respx.MockRouter, *chats: dict[str, Any]) -> respx.Route:
    """groupchat/get answering each of ``chats`` by its chat_id."""
    fake.token_route(respx_mock)
    known = {c["chat_id"]: c for c in chats}

    def answer(request: httpx.Request) -> httpx.Response:
        return fake.ok(group_chat=known[json.loads(request.content)["chat_id"]])

    route = fake.api(respx_mock, GET).mock(side_effect=answer)
    route.reset()  # count the calls from here on
    return route


async def group(runtime: Runtime, chat_id: str = CHAT) -> Group:
    async with runtime.sessions() as session:
        found = await session.get(Group, chat_id)
        assert found is not None
        return found


async def member_ids(runtime: Runtime, chat_id: str = CHAT) -> set[str]:
    async with runtime.sessions() as session:
        stmt = select(GroupMember.userid).where(GroupMember.chat_id == chat_id)
        return set(await session.scalars(stmt))


async def created(client: httpx.AsyncClient, runtime: Runtime) -> None:
    """The group CHAT created (a callback, then groupchat/get) at member version "v1"."""
    await post(client, runtime, chat_xml("create"), nonce="create")


def vip(version: str = "v1", *extra: dict[str, Any], name: str = "群VIP") -> dict[str, Any]:
    members = [member("zhangsan", 1), member("wm-old"), *extra]
    return {**chat(CHAT, version=version, members=members), "name": name}


async def test_create_fetches_the_group_in_the_background(
    client: httpx.AsyncClient, runtime: Runtime, respx_mock: respx.MockRouter
) -> None:
    get = wecom(respx_mock, vip())

    await created(client, runtime)

    assert [fake.body(c) for c in get.calls] == [{"chat_id": CHAT, "need_name": 1}]
    stored = await group(runtime)
    assert (stored.name, stored.owner, stored.member_version, stored.member_count) == (
        "群VIP", "zhangsan", "v1", 2,
    )  # fmt: skip
    assert await member_ids(runtime) == {"zhangsan", "wm-old"}
    answer = (await client.get(f"/v1/groups/{CHAT}", headers=auth())).json()
    assert [m["userid"] for m in answer["members"]] == ["zhangsan", "wm-old"]


async def test_update_of_name_refetches_and_dismiss_marks_dismissed_without_wecom(
    client: httpx.AsyncClient, runtime: Runtime, respx_mock: respx.MockRouter
) -> None:
    get = wecom(respx_mock, vip())
    await created(client, runtime)
    wecom(respx_mock, vip("v1", name="群VIP-新名字"))

    await post(client, runtime, chat_xml("update", detail="change_name"), nonce="rename")
    assert (await group(runtime)).name == "群VIP-新名字"

    get = wecom(respx_mock, vip())
    await post(client, runtime, chat_xml("dismiss"), nonce="dismiss")
    assert (await group(runtime)).status == "dismissed"
    assert get.call_count == 0


async def test_a_join_whose_versions_follow_on_is_applied_without_a_fetch(
    client: httpx.AsyncClient, runtime: Runtime, respx_mock: respx.MockRouter
) -> None:
    wecom(respx_mock, vip())
    await created(client, runtime)
    tags = await client.post(f"/v1/groups/{CHAT}/tags", json={"add": ["高价值"]}, headers=auth())
    assert tags.status_code == 200
    get = wecom(respx_mock, vip())
    join = chat_xml(
        "update", detail="add_member", JoinScene=3, MemChangeCnt=2,
        members=["wm-new1", "wm-new2"], LastMemVer="v1", CurMemVer="v2",
    )  # fmt: skip

    await post(client, runtime, join)
    await post(client, runtime, join, nonce="retry")  # WeCom's retry

    assert get.call_count == 0
    stored = await group(runtime)
    assert (stored.member_version, stored.member_count) == ("v2", 4)
    assert await member_ids(runtime) == {"zhangsan", "wm-old", "wm-new1", "wm-new2"}
    async with runtime.sessions() as session:
        events = list(await session.scalars(select(Event).where(Event.type == "group.joined")))
    assert len(events) == 2  # one per member; the retry made duplicates
    for event in events:
        assert event.data["chat_id"] == CHAT
        assert event.data["join_scene"] == 3
        assert event.data["group"] == {
            "id": CHAT, "chat_id": CHAT, "name": "群VIP", "owner": "zhangsan",
            "notice": "文明沟通", "status": "active", "tags": ["高价值"], "member_count": 4,
        }  # fmt: skip
    await runtime.dispatcher.tick()
    async with runtime.sessions() as session:
        texts = set(await session.scalars(select(MockOutbox.text)))
    assert texts == {"欢迎加入群VIP（群主 zhangsan，4 人，高价值）"}


async def test_a_member_change_whose_versions_do_not_follow_on_refetches(
    client: httpx.AsyncClient, runtime: Runtime, respx_mock: respx.MockRouter
) -> None:
    wecom(respx_mock, vip())
    await created(client, runtime)
    get = wecom(respx_mock, vip("v9", member("wm-new1")))
    join = chat_xml(
        "update", detail="add_member", members=["wm-new1"], LastMemVer="v5", CurMemVer="v6"
    )

    await post(client, runtime, join)

    assert get.call_count == 1
    stored = await group(runtime)
    assert (stored.member_version, stored.member_count) == ("v9", 3)


async def test_a_leave_is_applied_or_refetched_by_the_versions(
    client: httpx.AsyncClient, runtime: Runtime, respx_mock: respx.MockRouter
) -> None:
    wecom(respx_mock, vip())
    await created(client, runtime)
    get = wecom(respx_mock, chat(CHAT, version="v7", members=[member("zhangsan", 1)]))
    leave = chat_xml(
        "update", detail="del_member", QuitScene=0, members=["wm-old"], LastMemVer="v1",
        CurMemVer="v2",
    )  # fmt: skip

    await post(client, runtime, leave)

    assert get.call_count == 0
    assert await member_ids(runtime) == {"zhangsan"}
    assert (await group(runtime)).member_version == "v2"
    left = chat_xml(
        "update", detail="del_member", members=["zhangsan"], LastMemVer="v3", CurMemVer="v4"
    )
    await post(client, runtime, left)
    assert get.call_count == 1
    assert (await group(runtime)).member_version == "v7"


async def test_a_join_to_an_unknown_group_fetches_it(
    client: httpx.AsyncClient, runtime: Runtime, respx_mock: respx.MockRouter
) -> None:
    get = wecom(respx_mock, vip("v3", member("wm-new1")))

    join = chat_xml("update", detail="add_member", members=["wm-new1"], CurMemVer="v3")
    await post(client, runtime, join)

    assert get.call_count == 1
    assert await member_ids(runtime) == {"zhangsan", "wm-old", "wm-new1"}
    async with runtime.sessions() as session:
        (event,) = await session.scalars(select(Event).where(Event.type == "group.joined"))
    assert "group" not in event.data  # not stored when the event was ingested
    assert event.data["chat_id"] == CHAT


async def test_a_playbook_condition_sees_the_contacts_groups(
    client: httpx.AsyncClient, runtime: Runtime, respx_mock: respx.MockRouter
) -> None:
    wecom(respx_mock, vip())
    await created(client, runtime)
    await client.post(f"/v1/groups/{CHAT}/tags", json={"add": ["群友", "A"]}, headers=auth())
    order = {
        "type": "order.paid",
        "occurred_at": "2026-11-23T10:00:00+08:00",
        "data": {"order_id": "o1", "total": 10, "items": [{"sku": "X", "quantity": 1}]},
    }
    posted = {}
    for key, userid in (("in-group", "wm-old"), ("not-in-group", "wm-stranger")):
        body = {**order, "id": key, "contact": {"wecom_userid": userid}}
        answer = await client.post("/v1/events", json=body, headers=auth(INGEST))
        posted[key] = answer.json()["event_id"]

    started = {}
    for key, event_id in posted.items():
        detail = (await client.get(f"/v1/events/{event_id}", headers=auth())).json()
        outcomes = {e["playbook"]: e["outcome"] for e in detail["evaluations"]}
        started[key] = outcomes["vip-group-order"]
    assert started == {"in-group": "started", "not-in-group": "condition_false"}
    await runtime.dispatcher.tick()
    async with runtime.sessions() as session:
        texts = set(await session.scalars(select(MockOutbox.text)))
    assert texts == {"群友专享：A,群友"}
    contact = await client.get("/v1/contacts", params={"wecom_userid": "wm-old"}, headers=auth())
    assert contact.json()["groups"] == [
        {"chat_id": CHAT, "name": "群VIP", "owner": "zhangsan", "tags": ["A", "群友"]}
    ]


async def test_sync_now_starts_a_full_sync(
    client: httpx.AsyncClient, runtime: Runtime, respx_mock: respx.MockRouter
) -> None:
    fake.token_route(respx_mock)
    pages = fake.api(respx_mock, "externalcontact/groupchat/list").mock(
        return_value=fake.ok(group_chat_list=[{"chat_id": CHAT, "status": 0}], next_cursor="")
    )
    wecom(respx_mock, vip())

    response = await client.post("/v1/groups/sync", headers=auth())
    await runtime.settle()

    assert (response.status_code, response.json()) == (202, {"status": "started"})
    assert pages.call_count == 1
    assert (await group(runtime)).member_count == 2


async def test_a_group_callback_without_the_contact_secret_still_applies_what_it_can(
    client: httpx.AsyncClient, runtime: Runtime, respx_mock: respx.MockRouter
) -> None:
    wecom(respx_mock, vip())
    await created(client, runtime)
    assert runtime.groups is not None
    runtime.groups.source = None  # as when no 客户联系 secret is configured

    await post(client, runtime, chat_xml("dismiss"), nonce="d")

    assert (await group(runtime)).status == "dismissed"
    async with unit_of_work(runtime.sessions) as session:
        assert await session.get(Group, CHAT) is not None
