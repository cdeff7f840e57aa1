"""One profile per person, on every test database: contacts an event links by their
identities merge into the oldest, with their stats, history, runs and deliveries."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from smr.api.app import create_app
from smr.eventlog import PARTITIONS
from smr.models import Contact, ContactIdentity, Event, Run
from smr.repositories import event_log
from smr.runtime import Runtime, build_runtime
from smr.services.processing import process
from smr.subjects import ContactKind
from tests.conftest import CORE, make_settings
from tests.helpers import INGEST, FakeClock, auth, contact_of, keeping_up

PHONE = "13800000000"
PLAYBOOKS = {
    "tag-added.yaml": """
id: tag-added
name: 加好友打标
trigger: {event: contact.added}
steps:
  - tag: {add: [企微好友]}
  - set: {source: 企微}
""",
    "buyer.yaml": """
id: buyer
name: 买家打标
trigger: {event: order.paid}
steps:
  - tag: {add: [买家]}
  - set: {source: 商城, level: 新客}
""",
    "coupon.yaml": """
id: coupon
name: 领券
mode: parallel
cooldown: 30d
trigger: {event: coupon.asked}
steps:
  - send: {channel: mock, category: service, text: 券}
""",
}
NURTURE = """
id: nurture
name: 培育
mode: {mode}
trigger: {event: campaign.joined}
steps:
  - wait: 3d
  - send: {channel: mock, category: service, text: 培育}
"""


@pytest.fixture
def playbooks_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "playbooks"
    folder.mkdir()
    shutil.copy(CORE / "policies.yaml", folder / "policies.yaml")
    for name, body in PLAYBOOKS.items():
        (folder / name).write_text(body.lstrip(), encoding="utf-8")
    (folder / "nurture.yaml").write_text(NURTURE.replace("{mode}", "single"), encoding="utf-8")
    return folder


def event(key: str, kind: str, contact: dict[str, Any], **data: Any) -> dict[str, Any]:
    return {"id": key, "type": kind, "contact": contact, "data": data}


def order(key: str, contact: dict[str, Any], *, total: int = 100) -> dict[str, Any]:
    items = [{"sku": "FACE-WASH", "name": "洗面奶", "quantity": 1, "category": "洁面"}]
    return event(key, "order.paid", contact, order_id=f"o-{key}", total=total, items=items)


SHOP = {"phone": PHONE, "shop_customer_id": "S-1", "name": "王小姐"}
WECOM = {"wecom_userid": "wm-1"}
#: WeCom's edit_external_contact, once staff wrote the customer's mobile in the remark.
LINK = {"wecom_userid": "wm-1", "phone": PHONE}


async def posted(client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    """Post one event; the id of the contact it was processed for."""
    answer = await client.post("/v1/events", json=body, headers=auth(INGEST))
    assert answer.status_code == 202, answer.text
    return await contact_of(client, answer.json())


async def judged(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    """Post one event; ``GET /v1/events/{id}`` of it once processed."""
    answer = await client.post("/v1/events", json=body, headers=auth(INGEST))
    assert answer.status_code == 202, answer.text
    found = await client.get(f"/v1/events/{answer.json()['event_id']}", headers=auth())
    detail: dict[str, Any] = found.json()
    assert detail["status"] == "processed", detail
    return detail


async def two_of_one_person(client: httpx.AsyncClient, clock: FakeClock) -> tuple[str, str]:
    """A shop customer, then a WeCom friend nobody knows is her: two contacts."""
    shop = await posted(client, order("o-1", SHOP))
    clock.advance(hours=1)
    wecom = await posted(client, event("add-1", "contact.added", WECOM, state="ch-1"))
    assert shop != wecom
    return shop, wecom


async def test_a_wecom_friend_whose_remark_mobile_is_a_shop_customers_phone_becomes_her(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    shop, wecom = await two_of_one_person(client, clock)
    clock.advance(hours=1)

    detail = await judged(client, event("edit-1", "contact.edited", LINK))

    assert detail["contact_id"] == shop  # the older contact survives
    contact = (await client.get(f"/v1/contacts/{shop}", headers=auth())).json()
    assert contact["identities"] == {"phone": PHONE, "shop_customer_id": "S-1", **WECOM}
    assert contact["tags"] == ["买家", "企微好友"]
    assert contact["attributes"] == {"source": "商城", "level": "新客"}  # the survivor's win
    assert (contact["stats"]["orders"], contact["stats"]["total_spent"]) == (1, "100.00")
    assert contact["purchases"]["skus"]["FACE-WASH"]["orders"] == 1
    (merge,) = contact["merged_from"]
    assert (merge["merged"], merge["into"], merge["by"]) == (wecom, shop, ["phone", "wecom_userid"])
    assert merge["moved"]["identities"] == 1
    assert merge["moved"]["events"] == 1  # the WeCom add
    assert merge["moved"]["runs"] == 1
    assert detail["merges"] == [merge]
    async with runtime.sessions() as session:
        tombstone = await session.get(Contact, wecom)
        owners = set(await session.scalars(select(ContactIdentity.contact_id)))
        runs = set(await session.scalars(select(Run.contact_id)))
        events = set(await session.scalars(select(Event.contact_id)))
    assert tombstone is not None
    assert (tombstone.kind, tombstone.merged_into) == (ContactKind.MERGED, shop)
    assert (tombstone.tags, tombstone.attributes, tombstone.orders) == ([], {}, 0)
    assert owners == runs == events == {shop}


async def test_the_merged_id_answers_308_to_the_survivor_and_finds_it_in_events(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    shop, wecom = await two_of_one_person(client, clock)
    await posted(client, event("edit-1", "contact.edited", LINK))

    for path in (f"/v1/contacts/{wecom}", f"/v1/contacts/{wecom}/export"):
        moved = await client.get(path, headers=auth())
        assert moved.status_code == 308, moved.text
        assert moved.headers["location"] == path.replace(wecom, shop)
        assert moved.headers["content-type"] == "application/problem+json"
    erase = await client.delete(f"/v1/contacts/{wecom}", headers=auth())
    assert erase.status_code == 308
    by_id = await posted(client, order("o-2", {"id": wecom}))
    assert by_id == shop
    found = await client.get("/v1/contacts", params={"wecom_userid": "wm-1"}, headers=auth())
    assert found.json()["id"] == shop
    assert found.json()["stats"]["orders"] == 2


async def test_linking_again_merges_nothing_more(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    shop, _ = await two_of_one_person(client, clock)
    await posted(client, event("edit-1", "contact.edited", LINK))

    detail = await judged(client, event("edit-2", "contact.edited", {**LINK, **SHOP}))

    assert detail["contact_id"] == shop
    assert detail["merges"] == []
    async with runtime.sessions() as session:
        people = await session.scalar(
            select(func.count()).select_from(Contact).where(Contact.kind == ContactKind.PERSON)
        )
    assert people == 1


async def test_one_event_can_merge_three_contacts_into_the_oldest(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    first = await posted(client, order("o-1", {"phone": PHONE}))
    clock.advance(minutes=1)
    second = await posted(client, order("o-2", {"shop_customer_id": "S-1"}))
    clock.advance(minutes=1)
    third = await posted(client, event("add-1", "contact.added", WECOM))

    linked = await posted(
        client, event("x-1", "contact.edited", {**LINK, "shop_customer_id": "S-1"})
    )

    assert linked == first
    contact = (await client.get(f"/v1/contacts/{first}", headers=auth())).json()
    assert sorted(m["merged"] for m in contact["merged_from"]) == sorted([second, third])
    assert contact["stats"]["orders"] == 2


@pytest.mark.parametrize(
    ("mode", "going_on"),
    [("single", ["shop"]), ("restart", ["wecom"]), ("parallel", ["shop", "wecom"])],
)
async def test_runs_of_one_playbook_on_both_sides_follow_its_mode(
    client: httpx.AsyncClient,
    runtime: Runtime,
    clock: FakeClock,
    playbooks_dir: Path,
    mode: str,
    going_on: list[str],
) -> None:
    (playbooks_dir / "nurture.yaml").write_text(NURTURE.replace("{mode}", mode), encoding="utf-8")
    runtime.catalog.reload()
    ids = dict(zip(["shop", "wecom"], await two_of_one_person(client, clock), strict=True))
    started = {}
    for side, contact in (("shop", SHOP), ("wecom", WECOM)):
        detail = await judged(client, event(f"join-{side}", "campaign.joined", contact))
        started[side] = detail["runs"][0]["id"]
        clock.advance(hours=1)

    await posted(client, event("edit-1", "contact.edited", LINK))

    active = (await client.get(f"/v1/contacts/{ids['shop']}", headers=auth())).json()
    assert sorted(r["id"] for r in active["active_runs"] if r["playbook"] == "nurture") == sorted(
        started[side] for side in going_on
    )
    for side, run_id in started.items():
        run = (await client.get(f"/v1/runs/{run_id}", headers=auth())).json()
        assert run["contact_id"] == ids["shop"]
        kinds = [t["kind"] for t in run["trace"]]
        if side not in going_on:
            assert (run["status"], kinds[-1]) == ("exited", "end")
            assert f"mode {mode}" in run["end_reason"]
        elif side == "wecom":  # moved, and says so
            assert run["status"] == "waiting"
            assert run["trace"][-1]["kind"] == "merge"
            assert run["trace"][-1]["merged"] == ids["wecom"]
    clock.advance(days=3)
    await runtime.tick()
    outbox = (await client.get("/v1/mock/outbox", headers=auth())).json()["items"]
    assert [m["text"] for m in outbox].count("培育") == len(going_on)


async def test_a_cooldown_counts_the_runs_of_the_merged_contact(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await two_of_one_person(client, clock)
    await posted(client, event("ask-1", "coupon.asked", WECOM))
    await posted(client, event("edit-1", "contact.edited", LINK))
    clock.advance(days=1)

    detail = await judged(client, event("ask-2", "coupon.asked", SHOP))

    (evaluation,) = detail["evaluations"]
    assert (evaluation["playbook"], evaluation["outcome"]) == ("coupon", "refused_cooldown")


async def test_merged_stats_add_up_and_opt_outs_win_over_consents(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await posted(client, order("o-1", SHOP, total=100))
    await posted(client, event("c-1", "contact.consented", SHOP, channel="sms", source="商城"))
    clock.advance(hours=1)
    await posted(client, order("o-2", {"shop_customer_id": "S-2"}, total=50))
    await posted(
        client, event("u-1", "contact.unsubscribed", {"shop_customer_id": "S-2"}, channel="sms")
    )

    linked = await posted(
        client, order("o-3", {"phone": PHONE, "shop_customer_id": "S-2"}, total=10)
    )

    contact = (await client.get(f"/v1/contacts/{linked}", headers=auth())).json()
    assert (contact["stats"]["orders"], contact["stats"]["total_spent"]) == (3, "160.00")
    wash = contact["purchases"]["skus"]["FACE-WASH"]
    assert (wash["orders"], wash["quantity"]) == (3, 3)
    assert contact["opted_out"] == ["sms"]
    assert contact["consents"] == {}


@pytest.fixture
async def phone_never_merges(
    database_url: str, playbooks_dir: Path, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[httpx.AsyncClient]:
    """A shop whose customers share household phones: only WeCom and shop ids merge."""
    settings = make_settings(
        database_url, playbooks_dir, tmp_path / "data", merge_by="wecom_userid,shop_customer_id"
    )
    rt = build_runtime(settings, clock=clock)
    transport = httpx.ASGITransport(app=create_app(rt))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://smr.test", event_hooks=keeping_up(rt)
    ) as client:
        yield client
    await rt.aclose()


async def test_identity_kinds_left_out_of_merge_by_link_nobody(
    phone_never_merges: httpx.AsyncClient, clock: FakeClock
) -> None:
    client = phone_never_merges
    shop, wecom = await two_of_one_person(client, clock)

    linked = await posted(client, event("edit-1", "contact.edited", LINK))

    assert linked == wecom  # found by the identity that links, not by the shared phone
    for contact_id in (shop, wecom):
        contact = (await client.get(f"/v1/contacts/{contact_id}", headers=auth())).json()
        assert contact["merged_from"] == []
    assert (await client.get(f"/v1/contacts/{wecom}", headers=auth())).json()["identities"] == WECOM


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_an_event_for_the_merged_side_waits_for_the_merge_and_lands_on_the_survivor(
    accepting_client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    """Two processors at once: one merges, the other has an order of the merged contact. The
    second waits for the contact the first holds, then finds the survivor; neither loses the
    other's update."""
    client = accepting_client
    for body in (order("o-1", SHOP), event("add-1", "contact.added", WECOM)):
        await client.post("/v1/events", json=body, headers=auth(INGEST))
        await runtime.process_pending()
        clock.advance(hours=1)
    for body in (event("edit-1", "contact.edited", LINK), order("o-2", WECOM, total=30)):
        await client.post("/v1/events", json=body, headers=auth(INGEST))
    async with runtime.sessions() as reading:
        batch = await event_log.take(reading, partitions=list(range(PARTITIONS)), limit=10)
    (linking,) = [e for e in batch if e.key == "edit-1"]
    (buying,) = [e for e in batch if e.key == "o-2"]

    async def run(events: list[Any], session: Any) -> None:
        await process(
            session, events, catalog=runtime.catalog, now=clock.now, dispatcher=runtime.dispatcher
        )

    async with runtime.sessions() as merging, merging.begin():
        await run([linking], merging)
        other = asyncio.create_task(_in_its_own_transaction(runtime, run, [buying]))
        await _until_waiting_for_a_lock(runtime)
    await other

    async with runtime.sessions() as session:
        bought = await session.scalar(select(Event.contact_id).where(Event.key == "o-2"))
        first = await session.scalar(select(Event.contact_id).where(Event.key == "o-1"))
        survivor = await session.get(Contact, first)
        tombstones = list(
            await session.scalars(select(Contact).where(Contact.kind == ContactKind.MERGED))
        )
    assert bought == first
    assert survivor is not None
    assert (survivor.orders, str(survivor.total_spent)) == (2, "130.00")
    (tombstone,) = tombstones
    assert (tombstone.merged_into, tombstone.orders) == (first, 0)


async def _in_its_own_transaction(runtime: Runtime, run: Any, events: list[Any]) -> None:
    async with runtime.sessions() as session, session.begin():
        await run(events, session)


async def _until_waiting_for_a_lock(runtime: Runtime) -> None:
    """Until another connection waits for a row lock (the second processor, on the contact the
    first holds)."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND datname = current_database()"
    )
    for _ in range(500):
        async with runtime.sessions() as session:
            if await session.scalar(query):
                return
        await asyncio.sleep(0.01)
    raise AssertionError("the second processor never waited for the first")
