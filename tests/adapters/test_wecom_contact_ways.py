"""Channel codes kept in WeCom: the exact add/update/del bodies of 「联系我」 and 「加入群聊」,
no call when nothing changed, and a refusal recorded on the code and retried later."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import respx
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.wecom import WeComClient
from adapters.wecom.contact_ways import WeComContactWays
from smr.channel_codes import FOLDER, ChannelCodes
from smr.db import unit_of_work
from smr.models import ChannelCodeStatus
from smr.repositories import channel_codes as repo
from smr.repositories.channel_codes import StoredCode
from smr.services.channel_code_sync import Action, ChannelCodeKeeper, Outcome
from tests.adapters import wecom_fake as fake
from tests.helpers import FakeClock

DESK = """\
  - state: theatre-desk
    name: 剧场售票处
    staff: [zhangsan, lisi]
    remark: 剧场
"""
LIVE = """\
  - state: livestream-1211
    name: 12月11日直播
    group: {chat_ids: [wrOgQhDgAAMY], room_base_name: 直播福利群, room_base_id: 1}
"""
DESK_QR = "https://wework.qpic.cn/wwpic/desk/0"
LIVE_QR = "https://wework.qpic.cn/wwpic/live/0"
DESK_BODY = {
    "type": 2,
    "scene": 2,
    "remark": "剧场",
    "skip_verify": True,
    "state": "theatre-desk",
    "user": ["zhangsan", "lisi"],
}
LIVE_BODY = {
    "scene": 2,
    "remark": "12月11日直播",
    "auto_create_room": 1,
    "chat_id_list": ["wrOgQhDgAAMY"],
    "state": "livestream-1211",
    "room_base_name": "直播福利群",
    "room_base_id": 1,
}


class Setup:
    def __init__(
        self, folder: Path, codes: ChannelCodes, keeper: ChannelCodeKeeper, clock: FakeClock
    ) -> None:
        self.folder, self.codes, self.keeper, self.clock = folder, codes, keeper, clock

    def declare(self, *entries: str) -> None:
        text = "codes:\n" + "".join(entries) if entries else "codes: []\n"
        (self.folder / FOLDER / "codes.yaml").write_text(text, encoding="utf-8")
        assert self.codes.reload(self.folder) == []


@pytest.fixture
async def setup(sessions: async_sessionmaker[AsyncSession], tmp_path: Path) -> AsyncIterator[Setup]:
    (tmp_path / FOLDER).mkdir()
    clock = FakeClock(datetime(2026, 12, 6, 2, 0, tzinfo=UTC))
    client = WeComClient(corp_id=fake.CORP_ID, base_url=fake.BASE, timeout=5)
    ways = WeComContactWays(client, SecretStr(fake.SECRET))
    codes = ChannelCodes()
    keeper = ChannelCodeKeeper(sessions=sessions, declared=codes, ways=ways, clock=clock)
    yield Setup(tmp_path, codes, keeper, clock)
    await keeper.aclose()


async def stored(sessions: async_sessionmaker[AsyncSession]) -> dict[str, StoredCode]:
    async with unit_of_work(sessions) as session:
        return {row.state: row for row in await repo.stored(session)}


def routes(mock: respx.MockRouter) -> dict[str, respx.Route]:
    fake.token_route(mock)
    names = ("add_contact_way", "update_contact_way", "del_contact_way")
    found = {name: fake.api(mock, f"externalcontact/{name}") for name in names}
    for name in ("add_join_way", "get_join_way", "update_join_way", "del_join_way"):
        found[name] = fake.api(mock, f"externalcontact/groupchat/{name}")
    found["add_contact_way"].mock(return_value=fake.ok(config_id="cfg-desk", qr_code=DESK_QR))
    found["add_join_way"].mock(return_value=fake.ok(config_id="cfg-live"))
    join_way = {"config_id": "cfg-live", "scene": 2, "qr_code": LIVE_QR}
    found["get_join_way"].mock(return_value=fake.ok(join_way=join_way))
    for name in ("update_contact_way", "del_contact_way", "update_join_way", "del_join_way"):
        found[name].mock(return_value=fake.ok())
    return found


def calls(found: dict[str, respx.Route]) -> dict[str, int]:
    return {name: route.call_count for name, route in found.items() if route.call_count}


@pytest.mark.respx(assert_all_called=False)
async def test_declared_codes_are_made_once_with_the_documented_bodies(
    setup: Setup, sessions: async_sessionmaker[AsyncSession], respx_mock: respx.MockRouter
) -> None:
    api = routes(respx_mock)
    setup.declare(DESK, LIVE)

    outcomes = await setup.keeper.sync()

    assert outcomes == [
        Outcome("livestream-1211", Action.CREATE),
        Outcome("theatre-desk", Action.CREATE),
    ]
    assert fake.body(api["add_contact_way"].calls.last) == DESK_BODY
    assert fake.body(api["add_join_way"].calls.last) == LIVE_BODY
    assert fake.body(api["get_join_way"].calls.last) == {"config_id": "cfg-live"}
    rows = await stored(sessions)
    desk, live = rows["theatre-desk"], rows["livestream-1211"]
    assert (desk.status, desk.config_id, desk.qr_code, desk.wecom_type) == (
        ChannelCodeStatus.ACTIVE,
        "cfg-desk",
        DESK_QR,
        2,
    )
    assert (live.status, live.config_id, live.qr_code) == (
        ChannelCodeStatus.ACTIVE,
        "cfg-live",
        LIVE_QR,
    )
    assert desk.synced_at == setup.clock.now

    before = calls(api)
    assert await setup.keeper.sync() == []
    assert calls(api) == before, "nothing changed: no WeCom call"


@pytest.mark.respx(assert_all_called=False)
async def test_a_changed_code_is_updated_and_a_removed_one_deleted(
    setup: Setup, sessions: async_sessionmaker[AsyncSession], respx_mock: respx.MockRouter
) -> None:
    api = routes(respx_mock)
    setup.declare(DESK, LIVE)
    await setup.keeper.sync()

    setup.declare(DESK.replace("remark: 剧场", "remark: 剧场一楼").replace(", lisi", ", wangwu"))
    outcomes = await setup.keeper.sync()

    assert outcomes == [
        Outcome("livestream-1211", Action.DELETE),
        Outcome("theatre-desk", Action.UPDATE),
    ]
    assert fake.body(api["update_contact_way"].calls.last) == {
        "config_id": "cfg-desk",
        "user": ["zhangsan", "wangwu"],
        "party": [],
        "remark": "剧场一楼",
        "skip_verify": True,
        "state": "theatre-desk",
    }
    assert fake.body(api["del_join_way"].calls.last) == {"config_id": "cfg-live"}
    rows = await stored(sessions)
    assert rows["livestream-1211"].status is ChannelCodeStatus.REMOVED
    assert rows["livestream-1211"].config_id is None
    assert (rows["theatre-desk"].status, rows["theatre-desk"].qr_code) == (
        ChannelCodeStatus.ACTIVE,
        DESK_QR,
    )
    assert api["add_contact_way"].call_count == 1, "an update keeps the printed QR code"


@pytest.mark.respx(assert_all_called=False)
async def test_one_person_to_several_makes_the_code_again(
    setup: Setup, sessions: async_sessionmaker[AsyncSession], respx_mock: respx.MockRouter
) -> None:
    api = routes(respx_mock)
    setup.declare(DESK.replace(", lisi", ""))
    await setup.keeper.sync()
    assert fake.body(api["add_contact_way"].calls.last)["type"] == 1

    setup.declare(DESK)
    api["add_contact_way"].mock(return_value=fake.ok(config_id="cfg-desk-2", qr_code="https://q/2"))
    outcomes = await setup.keeper.sync()

    assert outcomes == [Outcome("theatre-desk", Action.REPLACE)]
    assert fake.body(api["del_contact_way"].calls.last) == {"config_id": "cfg-desk"}
    assert fake.body(api["add_contact_way"].calls.last) == DESK_BODY
    row = (await stored(sessions))["theatre-desk"]
    assert (row.config_id, row.qr_code, row.wecom_type) == ("cfg-desk-2", "https://q/2", 2)


@pytest.mark.respx(assert_all_called=False)
async def test_a_refusal_is_recorded_and_retried_when_due(
    setup: Setup, sessions: async_sessionmaker[AsyncSession], respx_mock: respx.MockRouter
) -> None:
    api = routes(respx_mock)
    made = fake.ok(config_id="cfg-desk", qr_code=DESK_QR)
    api["add_contact_way"].mock(side_effect=[fake.err(40003, "invalid userid"), made])
    setup.declare(DESK)

    outcomes = await setup.keeper.sync()

    error = "externalcontact/add_contact_way: errcode=40003 errmsg=invalid userid"
    assert outcomes == [Outcome("theatre-desk", Action.CREATE, error=error)]
    row = (await stored(sessions))["theatre-desk"]
    assert (row.status, row.last_error, row.attempts, row.config_id) == (
        ChannelCodeStatus.FAILED,
        error,
        1,
        None,
    )
    assert row.retry_at == setup.clock.now + timedelta(minutes=1)

    assert await setup.keeper.sync(force=False) == [], "not before retry_at"
    setup.clock.advance(minutes=1)
    assert await setup.keeper.sync(force=False) == [Outcome("theatre-desk", Action.CREATE)]

    row = (await stored(sessions))["theatre-desk"]
    assert (row.status, row.last_error, row.attempts, row.retry_at) == (
        ChannelCodeStatus.ACTIVE,
        None,
        0,
        None,
    )
    assert api["add_contact_way"].call_count == 2


@pytest.mark.respx(assert_all_called=False)
async def test_the_ticker_starts_the_retry_in_the_background(
    setup: Setup, sessions: async_sessionmaker[AsyncSession], respx_mock: respx.MockRouter
) -> None:
    api = routes(respx_mock)
    api["add_contact_way"].mock(
        side_effect=[fake.err(-1, "busy"), fake.ok(config_id="c", qr_code="q")]
    )
    setup.declare(DESK)
    await setup.keeper.sync()

    setup.keeper.tick()  # not due yet
    await setup.keeper.settle()
    assert api["add_contact_way"].call_count == 1
    setup.clock.advance(minutes=1)
    setup.keeper.tick()
    await setup.keeper.settle()

    assert api["add_contact_way"].call_count == 2
    assert (await stored(sessions))["theatre-desk"].status is ChannelCodeStatus.ACTIVE


@pytest.mark.respx(assert_all_called=False)
async def test_a_group_code_made_without_its_qr_keeps_its_config_id(
    setup: Setup, sessions: async_sessionmaker[AsyncSession], respx_mock: respx.MockRouter
) -> None:
    api = routes(respx_mock)
    join_way = {"config_id": "cfg-live", "qr_code": LIVE_QR}
    api["get_join_way"].mock(side_effect=[fake.err(-1), fake.ok(join_way=join_way)])
    setup.declare(LIVE)

    first = await setup.keeper.sync()
    row = (await stored(sessions))["livestream-1211"]
    second = await setup.keeper.sync()

    assert first[0].error is not None
    assert (row.status, row.config_id, row.qr_code) == (ChannelCodeStatus.FAILED, "cfg-live", None)
    assert second == [Outcome("livestream-1211", Action.FETCH_QR)]
    assert api["add_join_way"].call_count == 1, "never a second group code for one state"
    assert (await stored(sessions))["livestream-1211"].qr_code == LIVE_QR


async def test_without_wecom_nothing_is_made_and_it_is_said_once(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / FOLDER).mkdir()
    (tmp_path / FOLDER / "codes.yaml").write_text("codes:\n" + DESK, encoding="utf-8")
    codes = ChannelCodes()
    codes.reload(tmp_path)
    clock = FakeClock(datetime(2026, 12, 6, tzinfo=UTC))
    keeper = ChannelCodeKeeper(sessions=sessions, declared=codes, ways=None, clock=clock)

    with caplog.at_level(logging.INFO, logger="smr.services.channel_code_sync"):
        assert await keeper.sync() == []
        assert await keeper.sync() == []

    told = [r for r in caplog.records if "WeCom is not configured" in r.getMessage()]
    assert len(told) == 1
    assert await stored(sessions) == {}
    await keeper.aclose()
