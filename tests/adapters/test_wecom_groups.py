"""客户群 sync against a fake WeCom (groupchat/list, groupchat/get) on every test database: paging
with the cursor, member versions sparing a fetch, dismissing what WeCom no longer lists, one
daily sync across workers, and what a failure does."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.wecom import WeComClient
from adapters.wecom.groups import WeComGroups, read_group
from smr.backoff import Backoff
from smr.channels import RetriableSendError
from smr.db import unit_of_work
from smr.models import Contact, ContactIdentity, Group, GroupMember, PeriodicSlot
from smr.services import groups
from smr.services.group_sync import GroupSync
from tests.adapters import wecom_fake as fake
from tests.helpers import FakeClock

LIST = "externalcontact/groupchat/list"
GET = "externalcontact/groupchat/get"


def member(userid: str, type_: int = 2, **extra: Any) -> dict[str, Any]:
    return {
        "userid": userid,
        "type": type_,
        "join_time": 1572505491,
        "join_scene": 1,
        "group_nickname": f"昵称{userid}",
        "name": f"名字{userid}",
        **extra,
    }


def chat(
    chat_id: str, *, version: str, members: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A groupchat/get ``group_chat``, shaped as in the official example."""
    return {
        "chat_id": chat_id,
        "name": f"群{chat_id}",
        "owner": "zhangsan",
        "create_time": 1572505490,
        "notice": "文明沟通",
        "member_list": members
        if members is not None
        else [member("zhangsan", 1), member(f"wm-{chat_id}", invitor={"userid": "zhangsan"})],
        "admin_list": [{"userid": "zhangsan"}],
        "member_version": version,
    }


def listed(*items: tuple[str, int] | dict[str, Any], cursor: str = "") -> httpx.Response:
    entries = [i if isinstance(i, dict) else {"chat_id": i[0], "status": i[1]} for i in items]
    return fake.ok(group_chat_list=entries, next_cursor=cursor)


def getter(chats: dict[str, dict[str, Any]]) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        chat_id = json.loads(request.content)["chat_id"]
        return fake.ok(group_chat=chats[chat_id])

    return answer


def asked(route: respx.Route) -> list[str]:
    return [fake.body(call)["chat_id"] for call in route.calls]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 12, 6, 3, 0, tzinfo=UTC))


@pytest.fixture
async def source() -> AsyncIterator[WeComGroups]:
    client = WeComClient(corp_id=fake.CORP_ID, base_url=fake.BASE, timeout=5)
    yield WeComGroups(client, SecretStr(fake.SECRET))
    await client.aclose()


@pytest.fixture
def sync(
    source: WeComGroups, sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> GroupSync:
    return GroupSync(source, sessions=sessions, clock=clock, fetch_delay=0)


async def stored(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Group]:
    async with sessions() as session:
        return {g.chat_id: g for g in await session.scalars(select(Group))}


async def members(sessions: async_sessionmaker[AsyncSession], chat_id: str) -> dict[str, Any]:
    async with sessions() as session:
        rows = await session.scalars(select(GroupMember).where(GroupMember.chat_id == chat_id))
        return {m.userid: m for m in rows}


async def seed(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock, *chats: dict[str, Any]
) -> None:
    async with unit_of_work(sessions) as session:
        for c in chats:
            await groups.save(session, read_group(c), now=clock.now)


async def seed_contact(sessions: async_sessionmaker[AsyncSession], userid: str) -> str:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    async with unit_of_work(sessions) as session:
        session.add(
            Contact(
                id="ct_known", tags=[], attributes={}, opted_out=[], orders=0,
                total_spent=Decimal(0), created_at=now, updated_at=now,
            )
        )  # fmt: skip
        await session.flush()
        session.add(ContactIdentity(kind="wecom_userid", value=userid, contact_id="ct_known"))
    return "ct_known"


async def test_a_full_sync_pages_with_the_cursor_and_stores_groups_and_members(
    sync: GroupSync, sessions: async_sessionmaker[AsyncSession], respx_mock: respx.MockRouter
) -> None:
    contact_id = await seed_contact(sessions, "wm-wr1")
    fake.token_route(respx_mock)
    pages = fake.api(respx_mock, LIST).mock(
        side_effect=[listed(("wr1", 0), ("wr2", 1), cursor="CURSOR-2"), listed(("wr3", 3))]
    )
    chats = {c: chat(c, version=f"v-{c}") for c in ("wr1", "wr2", "wr3")}
    get = fake.api(respx_mock, GET).mock(side_effect=getter(chats))

    report = await sync.sync()

    assert [fake.body(c) for c in pages.calls] == [
        {"status_filter": 0, "limit": 1000},
        {"status_filter": 0, "limit": 1000, "cursor": "CURSOR-2"},
    ]
    assert sorted(asked(get)) == ["wr1", "wr2", "wr3"]
    assert {fake.body(c)["need_name"] for c in get.calls} == {1}
    assert (report.listed, report.fetched, report.unchanged, report.dismissed) == (3, 3, 0, 0)
    found = await stored(sessions)
    assert {c: (g.owner_status, g.status, g.member_version) for c, g in found.items()} == {
        "wr1": ("employed", "active", "v-wr1"),
        "wr2": ("resigned", "active", "v-wr2"),
        "wr3": ("transferred", "active", "v-wr3"),
    }
    group = found["wr1"]
    assert (group.name, group.owner, group.notice, group.member_count) == (
        "群wr1",
        "zhangsan",
        "文明沟通",
        2,
    )
    assert group.created_at == datetime.fromtimestamp(1572505490, UTC)
    inside = await members(sessions, "wr1")
    assert {u: (m.type, m.contact_id) for u, m in inside.items()} == {
        "zhangsan": ("staff", None),
        "wm-wr1": ("customer", contact_id),
    }
    customer = inside["wm-wr1"]
    assert (customer.invitor, customer.join_scene, customer.group_nickname, customer.name) == (
        "zhangsan", 1, "昵称wm-wr1", "名字wm-wr1",
    )  # fmt: skip


async def test_a_group_whose_listed_member_version_is_stored_is_not_fetched(
    sync: GroupSync,
    sessions: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    respx_mock: respx.MockRouter,
) -> None:
    await seed(sessions, clock, chat("wr1", version="v1"), chat("wr2", version="v2-old"))
    fake.token_route(respx_mock)
    # The documented list answer has no member_version; when WeCom gives one, it spares a get.
    fake.api(respx_mock, LIST).mock(
        return_value=listed(
            {"chat_id": "wr1", "status": 0, "member_version": "v1"},
            {"chat_id": "wr2", "status": 0, "member_version": "v2-new"},
            ("wr3", 0),
        )
    )
    chats = {"wr2": chat("wr2", version="v2-new"), "wr3": chat("wr3", version="v3")}
    get = fake.api(respx_mock, GET).mock(side_effect=getter(chats))

    report = await sync.sync()

    assert sorted(asked(get)) == ["wr2", "wr3"]
    assert (report.fetched, report.unchanged) == (2, 1)
    versions = {c: g.member_version for c, g in (await stored(sessions)).items()}
    assert versions == {"wr1": "v1", "wr2": "v2-new", "wr3": "v3"}


async def test_groups_wecom_no_longer_lists_are_dismissed_and_come_back_when_listed(
    sync: GroupSync,
    sessions: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    respx_mock: respx.MockRouter,
) -> None:
    await seed(sessions, clock, chat("wr1", version="v1"), chat("wr9", version="v9"))
    fake.token_route(respx_mock)
    pages = fake.api(respx_mock, LIST).mock(return_value=listed(("wr1", 0)))
    fake.api(respx_mock, GET).mock(side_effect=getter({"wr1": chat("wr1", version="v1")}))
    clock.advance(hours=1)

    report = await sync.sync()

    assert report.dismissed == 1
    assert {c: g.status for c, g in (await stored(sessions)).items()} == {
        "wr1": "active",
        "wr9": "dismissed",
    }
    pages.mock(return_value=listed(("wr1", 0), ("wr9", 0)))
    fake.api(respx_mock, GET).mock(
        side_effect=getter({"wr1": chat("wr1", version="v1"), "wr9": chat("wr9", version="v9")})
    )
    clock.advance(hours=1)
    await sync.sync()
    assert (await stored(sessions))["wr9"].status == "active"


async def test_a_group_wecom_refuses_is_kept_and_the_sync_goes_on(
    sync: GroupSync,
    sessions: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    respx_mock: respx.MockRouter,
) -> None:
    await seed(sessions, clock, chat("wr2", version="v-old"))
    fake.token_route(respx_mock)
    fake.api(respx_mock, LIST).mock(return_value=listed(("wr1", 0), ("wr2", 0)))

    def answer(request: httpx.Request) -> httpx.Response:
        chat_id = json.loads(request.content)["chat_id"]
        if chat_id == "wr2":
            return fake.err(90501, "chat is not external group chat")
        return fake.ok(group_chat=chat(chat_id, version="v1"))

    fake.api(respx_mock, GET).mock(side_effect=answer)
    clock.advance(hours=1)

    report = await sync.sync()

    assert (report.fetched, report.refused, report.dismissed) == (1, 1, 0)
    found = await stored(sessions)
    assert (found["wr1"].status, found["wr2"].status) == ("active", "active")
    assert found["wr2"].member_version == "v-old"


async def test_a_failure_of_the_moment_ends_the_sync_and_dismisses_nothing(
    sync: GroupSync,
    sessions: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    respx_mock: respx.MockRouter,
) -> None:
    await seed(sessions, clock, chat("wr9", version="v9"))
    fake.token_route(respx_mock)
    fake.api(respx_mock, LIST).mock(
        side_effect=[listed(("wr1", 0), cursor="C2"), httpx.Response(503)]
    )
    fake.api(respx_mock, GET).mock(side_effect=getter({"wr1": chat("wr1", version="v1")}))
    clock.advance(hours=1)

    with pytest.raises(RetriableSendError):
        await sync.sync()

    found = await stored(sessions)
    assert found["wr9"].status == "active"
    assert found["wr1"].status == "active"  # the first page's groups are stored


async def test_the_daily_sync_runs_once_a_day_whatever_the_number_of_workers(
    source: WeComGroups,
    sessions: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    respx_mock: respx.MockRouter,
) -> None:
    fake.token_route(respx_mock)
    pages = fake.api(respx_mock, LIST).mock(return_value=listed())
    workers = [GroupSync(source, sessions=sessions, clock=clock) for _ in range(3)]

    for _ in range(2):
        for worker in workers:
            await worker.tick()
            await worker.settle()
    assert pages.call_count == 1

    clock.advance(days=1)
    for worker in workers:
        await worker.tick()
        await worker.settle()
    assert pages.call_count == 2
    async with sessions() as session:
        slots = list(await session.scalars(select(PeriodicSlot.slot_at)))
    assert sorted(slots) == [
        datetime(2026, 12, 6, tzinfo=UTC),
        datetime(2026, 12, 7, tzinfo=UTC),
    ]


async def test_a_failed_daily_sync_gives_its_slot_back_and_is_tried_again_later(
    source: WeComGroups,
    sessions: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    respx_mock: respx.MockRouter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.token_route(respx_mock)
    pages = fake.api(respx_mock, LIST).mock(
        side_effect=[fake.err(-1, "system busy"), listed(), listed()]
    )
    first, second = (GroupSync(source, sessions=sessions, clock=clock) for _ in range(2))
    first.backoff = Backoff(first=60, cap=3600, draw=lambda: 0.0)

    await first.tick()  # never raises
    await first.settle()
    assert pages.call_count == 1
    assert "group sync" in caplog.text

    await first.tick()  # waits out its backoff (30 s to 60 s)
    await first.settle()
    assert pages.call_count == 1

    await second.tick()  # the slot was given back: another worker takes it at once
    await second.settle()
    assert pages.call_count == 2

    clock.advance(seconds=61)
    await first.tick()  # taken for today by the second worker
    await first.settle()
    assert pages.call_count == 2
