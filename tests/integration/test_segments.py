"""Segments on every test database: memberships kept as customers change, counted and listed
by the API, entries and exits posted as events that start playbooks, time-based memberships
caught by the hourly pass, and a new definition filled without messaging anyone."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from smr.models import Contact, Event, SegmentMember
from smr.runtime import Runtime
from tests.conftest import CORE
from tests.helpers import INGEST, FakeClock, auth, contact_of

SEGMENTS = {
    "big.yaml": """
id: 大客户
description: 累计消费满 500 元
if: "contact.stats.total_spent >= 500"
tags_none: [黑名单]
""",
    "lapsed.yaml": """
id: 沉睡
if: "contact.stats.orders > 0 and contact.stats.days_since_last_order > 30"
""",
}
PLAYBOOKS = {
    "welcome-big.yaml": """
id: welcome-big
name: 欢迎大客户
trigger: {segment: 大客户}
steps:
  - send: {channel: mock, category: service, text: "欢迎成为大客户"}
""",
    "bye-big.yaml": """
id: bye-big
name: 掉出大客户
trigger: {segment: 大客户, on: exited}
steps:
  - tag: {add: [曾是大客户]}
""",
    "lapsed-note.yaml": """
id: lapsed-note
name: 沉睡提醒
trigger: {segment: 沉睡}
steps:
  - send: {channel: mock, category: service, text: "好久不见"}
""",
    "flag.yaml": """
id: flag
name: 风控拉黑
trigger: {event: risk.flagged}
steps:
  - tag: {add: [黑名单]}
""",
    "big-hourly.yaml": """
id: big-hourly
name: 大客户整点关怀
trigger:
  schedule: "0 * * * *"
  audience: {segment: 大客户}
steps:
  - send: {channel: mock, category: service, text: "整点关怀"}
""",
    "vip-reply.yaml": """
id: vip-reply
name: 大客户回复
mode: parallel
trigger:
  event: chat.message
  if: "'大客户' in contact.segments"
steps:
  - send: {channel: mock, category: service, text: "大客户专线"}
""",
}


@pytest.fixture
def playbooks_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "playbooks"
    (folder / "segments").mkdir(parents=True)
    shutil.copy(CORE / "policies.yaml", folder / "policies.yaml")
    for name, body in PLAYBOOKS.items():
        (folder / name).write_text(body.lstrip(), encoding="utf-8")
    for name, body in SEGMENTS.items():
        (folder / "segments" / name).write_text(body.lstrip(), encoding="utf-8")
    return folder


def order(key: str, phone: str, total: int, *, refund: bool = False) -> dict[str, Any]:
    return {
        "id": key,
        "type": "order.refunded" if refund else "order.paid",
        "contact": {"phone": phone},
        "data": {"order_id": f"o-{key}", "total": total, "items": [{"sku": "X", "quantity": 1}]},
    }


async def post(client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    answer = await client.post("/v1/events", json=body, headers=auth(INGEST))
    assert answer.status_code == 202, answer.text
    return await contact_of(client, answer.json())


async def sent(client: httpx.AsyncClient) -> list[tuple[str, str]]:
    """(contact id, text) of what the mock channel sent."""
    found = (await client.get("/v1/mock/outbox", headers=auth())).json()["items"]
    return sorted((m["contact_id"], m["text"]) for m in found)


async def segment_events(runtime: Runtime) -> list[tuple[str | None, str, str]]:
    async with runtime.sessions() as session:
        stmt = select(Event.contact_id, Event.type, Event.data).where(Event.source == "smr")
        rows = (await session.execute(stmt.order_by(Event.id))).all()
    return [(cid, kind, data["segment"]) for cid, kind, data in rows]


async def test_a_new_definition_is_filled_silently_then_entries_and_exits_start_playbooks(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    early = await post(client, order("o-1", "13800000001", 600))
    assert runtime.segments is not None
    await runtime.segments.refresh()  # fills the new definitions: nobody is messaged
    assert await segment_events(runtime) == []

    late = await post(client, order("o-2", "13800000002", 600))
    await post(client, order("o-3", "13800000001", 200, refund=True))

    assert await segment_events(runtime) == [
        (late, "segment.entered", "大客户"),
        (early, "segment.exited", "大客户"),
    ]
    assert await sent(client) == [(late, "欢迎成为大客户")]
    gone = (await client.get(f"/v1/contacts/{early}", headers=auth())).json()
    assert "曾是大客户" in gone["tags"]
    listed = (await client.get("/v1/segments", headers=auth())).json()
    counts = {s["id"]: (s["members"], s["filled"]) for s in listed["segments"]}
    assert counts == {"大客户": (1, True), "沉睡": (0, True)}
    assert listed["errors"] == []
    members = (await client.get("/v1/segments/大客户/contacts", headers=auth())).json()
    assert [m["id"] for m in members["items"]] == [late]
    detail = (await client.get(f"/v1/contacts/{late}", headers=auth())).json()
    assert detail["segments"] == ["大客户"]


async def test_time_alone_moves_customers_at_the_hourly_pass(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    assert runtime.segments is not None
    await runtime.segments.refresh()
    buyer = await post(client, order("o-1", "13800000001", 100))
    clock.advance(days=31)

    moved = await runtime.segments.refresh()
    await runtime.process_pending()

    assert moved == {"entered": 1, "left": 0}
    assert await sent(client) == [(buyer, "好久不见")]
    assert (await client.get("/v1/segments/沉睡", headers=auth())).json()["members"] == 1


async def test_conditions_read_contact_segments_and_a_tag_keeps_a_customer_out(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    assert runtime.segments is not None
    await runtime.segments.refresh()
    big = await post(client, order("o-1", "13800000001", 900))
    await post(client, {"id": "m-1", "type": "chat.message", "contact": {"phone": "13800000001"}})
    blocked = await post(
        client, {"id": "b-1", "type": "risk.flagged", "contact": {"phone": "13800000002"}}
    )
    await post(client, order("o-2", "13800000002", 900))
    await post(client, {"id": "m-2", "type": "chat.message", "contact": {"phone": "13800000002"}})

    assert await sent(client) == [(big, "大客户专线"), (big, "欢迎成为大客户")]
    async with runtime.sessions() as session:
        members = (await session.execute(select(SegmentMember.contact_id))).scalars().all()
    assert list(members) == [big]
    assert blocked != big


async def test_a_merge_and_an_erasure_take_the_memberships_with_them(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    assert runtime.segments is not None
    await runtime.segments.refresh()
    shop = await post(client, order("o-1", "13800000001", 300))
    other = await post(
        client,
        {
            "id": "o-2",
            "type": "order.paid",
            "contact": {"shop_customer_id": "S-2"},
            "data": {"order_id": "o-2", "total": 300},
        },
    )
    linked = await post(
        client,
        {
            "id": "o-3",
            "type": "order.paid",
            "contact": {"phone": "13800000001", "shop_customer_id": "S-2"},
            "data": {"order_id": "o-3", "total": 1},
        },
    )
    assert linked == shop != other
    async with runtime.sessions() as session:
        rows = (await session.execute(select(SegmentMember.contact_id))).scalars().all()
    assert list(rows) == [shop]  # 601 together

    await client.delete(f"/v1/contacts/{shop}", headers=auth())

    async with runtime.sessions() as session:
        left = await session.scalar(select(func.count()).select_from(SegmentMember))
        tombstone = await session.get(Contact, shop)
    assert left == 0
    assert tombstone is not None
    assert tombstone.segments == []


async def test_a_broken_segment_file_keeps_its_last_good_definition(
    client: httpx.AsyncClient, runtime: Runtime, playbooks_dir: Path
) -> None:
    (playbooks_dir / "segments" / "big.yaml").write_text(
        'id: 大客户\nif: "contact.stats.total_spent >="\n', encoding="utf-8"
    )
    runtime.catalog.reload()

    listed = (await client.get("/v1/segments", headers=auth())).json()

    assert [s["id"] for s in listed["segments"]] == ["大客户", "沉睡"]
    ((error),) = listed["errors"]
    assert (error["path"], error["line"]) == ("if", 2)
    unknown = await client.get("/v1/segments/nobody", headers=auth())
    assert unknown.status_code == 404


async def test_a_schedule_reaches_the_segment_alone(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    assert runtime.segments is not None
    await runtime.start()
    await runtime.segments.refresh()
    big = await post(client, order("o-1", "13800000001", 900))
    await post(client, order("o-2", "13800000002", 100))
    clock.advance(hours=1)

    report = await runtime.cron.tick()
    await runtime.process_pending()

    assert report.runs_started == 1
    assert [(cid, text) for cid, text in await sent(client) if text == "整点关怀"] == [
        (big, "整点关怀")
    ]


async def test_a_segment_file_is_validated_before_it_is_saved(client: httpx.AsyncClient) -> None:
    async def validated(body: str, **params: str) -> Any:
        answer = await client.post(
            "/v1/playbooks/validate", content=body.encode(), params=params, headers=auth()
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    good = await validated('id: 老客\nif: "contact.stats.orders > 1"\n', kind="segment")
    bad = await validated('id: 老 客\nif: "contact.stats.orders >"\n', filename="segments/x.yaml")

    assert good == {"valid": True, "errors": []}
    assert bad["valid"] is False
    assert sorted(e["path"] for e in bad["errors"]) == ["id", "if"]
