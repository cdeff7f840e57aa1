"""GET /v1/groups, GET /v1/groups/{chat_id}, POST /v1/groups/{chat_id}/tags, POST
/v1/groups/sync: filters, cursor pages, tags, and bad input answered 422 with field paths."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from adapters.wecom.groups import read_group
from smr.db import unit_of_work
from smr.repositories import groups as repo
from smr.runtime import Runtime
from smr.services import groups
from tests.adapters.test_wecom_groups import chat, member
from tests.helpers import INGEST, auth, contact_of

PROBLEM = "application/problem+json"


async def seed(runtime: Runtime, *chats: dict[str, Any], dismissed: tuple[str, ...] = ()) -> None:
    async with unit_of_work(runtime.sessions) as session:
        for c in chats:
            await groups.save(session, read_group(c), now=runtime.clock())
        for chat_id in dismissed:
            await repo.dismiss(session, chat_id, now=runtime.clock())


def named(chat_id: str, name: str, owner: str = "zhangsan") -> dict[str, Any]:
    return {**chat(chat_id, version=f"v-{chat_id}"), "name": name, "owner": owner}


@pytest.fixture
async def seeded(runtime: Runtime) -> Runtime:
    await seed(
        runtime,
        named("wr1", "VIP一群"),
        named("wr2", "VIP二群", owner="lisi"),
        named("wr3", "新客群"),
        named("wr4", "旧群"),
        dismissed=("wr4",),
    )
    return runtime


async def chat_ids(client: httpx.AsyncClient, **params: Any) -> list[str]:
    response = await client.get("/v1/groups", params=params, headers=auth())
    assert response.status_code == 200, response.text
    return [g["chat_id"] for g in response.json()["items"]]


def assert_invalid(response: httpx.Response, *paths: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert sorted({e["path"] for e in response.json()["errors"]}) == sorted(paths)


async def test_list_filters_by_owner_name_tag_and_status(
    client: httpx.AsyncClient, seeded: Runtime
) -> None:
    tagged = await client.post("/v1/groups/wr3/tags", json={"add": ["新客"]}, headers=auth())
    assert tagged.status_code == 200

    assert await chat_ids(client) == ["wr4", "wr3", "wr2", "wr1"]
    assert await chat_ids(client, owner="lisi") == ["wr2"]
    assert await chat_ids(client, name_contains="VIP") == ["wr2", "wr1"]
    assert await chat_ids(client, name_contains="%") == []  # a literal, not a wildcard
    assert await chat_ids(client, tag="新客") == ["wr3"]
    assert await chat_ids(client, status="dismissed") == ["wr4"]
    assert await chat_ids(client, status="active", owner="zhangsan") == ["wr3", "wr1"]


async def test_list_pages_with_a_cursor(client: httpx.AsyncClient, seeded: Runtime) -> None:
    first = (await client.get("/v1/groups", params={"limit": 3}, headers=auth())).json()
    rest = await client.get(
        "/v1/groups", params={"limit": 3, "cursor": first["next_cursor"]}, headers=auth()
    )

    assert [g["chat_id"] for g in first["items"]] == ["wr4", "wr3", "wr2"]
    assert [g["chat_id"] for g in rest.json()["items"]] == ["wr1"]
    assert rest.json()["next_cursor"] is None


async def test_show_has_the_members_and_the_group_fields(
    client: httpx.AsyncClient, seeded: Runtime
) -> None:
    response = await client.get("/v1/groups/wr1", headers=auth())

    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("name", "owner", "status", "owner_status", "member_count")} == {
        "name": "VIP一群",
        "owner": "zhangsan",
        "status": "active",
        "owner_status": "employed",
        "member_count": 2,
    }
    assert body["created_at"] == "2019-10-31T07:04:50+00:00"
    assert [(m["userid"], m["type"], m["invitor"]) for m in body["members"]] == [
        ("zhangsan", "staff", None),
        ("wm-wr1", "customer", "zhangsan"),
    ]


async def test_a_customer_member_shows_its_contact_once_it_exists(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await seed(runtime, chat("wr1", version="v1", members=[member("wm-late")]))
    event = {
        "id": "e1",
        "type": "custom.hello",
        "occurred_at": "2026-11-23T10:00:00+08:00",
        "contact": {"wecom_userid": "wm-late"},
    }
    answer = await client.post("/v1/events", json=event, headers=auth(INGEST))
    contact_id = await contact_of(client, answer.json())

    body = (await client.get("/v1/groups/wr1", headers=auth())).json()

    assert [m["contact_id"] for m in body["members"]] == [contact_id]
    contact = (await client.get(f"/v1/contacts/{contact_id}", headers=auth())).json()
    assert [g["chat_id"] for g in contact["groups"]] == ["wr1"]


async def test_tags_are_added_and_removed(client: httpx.AsyncClient, seeded: Runtime) -> None:
    url = "/v1/groups/wr1/tags"
    first = await client.post(url, json={"add": ["VIP", " 高价值 ", "VIP"]}, headers=auth())
    second = await client.post(url, json={"add": ["新"], "remove": ["VIP"]}, headers=auth())

    assert first.json()["tags"] == ["VIP", "高价值"]
    assert second.status_code == 200
    assert second.json()["tags"] == ["新", "高价值"]


@pytest.mark.parametrize(
    ("body", "paths"),
    [
        ({}, ["(body)"]),
        ({"add": []}, ["(body)"]),
        ({"add": [""]}, ["add[0]"]),
        ({"add": ["x" * 101]}, ["add[0]"]),
        ({"add": ["ok"], "remove": [1]}, ["remove[0]"]),
        ({"add": [f"t{i}" for i in range(101)]}, ["add"]),
        ({"add": ["ok"], "colour": "red"}, ["colour"]),
        (["ok"], ["(body)"]),
    ],
)
async def test_bad_tag_changes_are_422_with_the_field_path(
    client: httpx.AsyncClient, seeded: Runtime, body: Any, paths: list[str]
) -> None:
    response = await client.post("/v1/groups/wr1/tags", json=body, headers=auth())

    assert_invalid(response, *paths)
    assert (await client.get("/v1/groups/wr1", headers=auth())).json()["tags"] == []


async def test_bad_list_queries_are_422_with_the_field_path(
    client: httpx.AsyncClient, seeded: Runtime
) -> None:
    assert_invalid(await client.get("/v1/groups?status=gone", headers=auth()), "query.status")
    assert_invalid(await client.get("/v1/groups?limit=0", headers=auth()), "query.limit")
    assert_invalid(await client.get("/v1/groups?cursor=%%%", headers=auth()), "cursor")
    long_tag = "t" * 101
    assert_invalid(await client.get(f"/v1/groups?tag={long_tag}", headers=auth()), "query.tag")


async def test_unknown_groups_are_404_and_tokens_are_checked(
    client: httpx.AsyncClient, seeded: Runtime
) -> None:
    missing = await client.get("/v1/groups/nope", headers=auth())
    tags = await client.post("/v1/groups/nope/tags", json={"add": ["x"]}, headers=auth())
    ingest = await client.get("/v1/groups", headers=auth(INGEST))

    assert (missing.status_code, tags.status_code, ingest.status_code) == (404, 404, 403)
    assert missing.headers["content-type"] == PROBLEM


async def test_sync_without_wecom_configured_is_404(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    response = await client.post("/v1/groups/sync", headers=auth())

    assert response.status_code == 404
    assert "SMR_WECOM__CONTACT_SECRET" in response.json()["detail"]
