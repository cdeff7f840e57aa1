"""Group welcome templates kept in WeCom (against a fake WeCom): the exact add / edit / del
bodies, nothing called when nothing changed, a failure recorded and retried, and nothing at all
without WeCom configured."""

from __future__ import annotations

import logging
import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters import PLAYBOOK_CHANNELS
from adapters.wecom.welcome_templates import build_welcome_templates
from smr.db import unit_of_work
from smr.models import GroupWelcomeStatus
from smr.repositories import group_welcome as repo
from smr.repositories.group_welcome import StoredTemplate
from smr.services.catalog import Catalog
from smr.services.group_welcome import Action, GroupWelcomeKeeper, declared_in
from tests.adapters import wecom_fake as fake
from tests.helpers import FakeClock

MEDIA = Path(__file__).resolve().parents[1] / "fixtures" / "media"
PICURL = "https://wework.qpic.cn/wwpic/poster/0"
POLICIES = "timezone: Asia/Shanghai\nvars: {shop_name: 某某店}\n"
PLAYBOOK = """\
id: group-join-sop
name: 入群 SOP
trigger: {event: group.joined}
group_welcome:
  text: "欢迎 %NICKNAME% 加入{{ vars.shop_name }}会员群！"
  attachments:
    - miniprogram:
        {appid: wx8bd80126147dfAAA, page: /pages/index, title: 会员中心, cover: media/poster.png}
steps:
  - tag: {add: [in-group]}
"""
CARD = {
    "title": "会员中心",
    "pic_media_id": "image-1",
    "appid": "wx8bd80126147dfAAA",
    "page": "/pages/index",
}
ID = "group-join-sop"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    shutil.copytree(MEDIA, tmp_path / "media")
    (tmp_path / "policies.yaml").write_text(POLICIES, encoding="utf-8")
    (tmp_path / "gw.yaml").write_text(PLAYBOOK, encoding="utf-8")
    return tmp_path


@pytest.fixture
def catalog(folder: Path) -> Catalog:
    catalog = Catalog(folder, PLAYBOOK_CHANNELS)
    catalog.reload()
    assert [e.format() for e in catalog.errors] == []
    return catalog


@pytest.fixture
async def keeper(
    catalog: Catalog, sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> AsyncIterator[GroupWelcomeKeeper]:
    templates = build_welcome_templates(
        fake.settings(), sessions=sessions, clock=clock, playbooks_dir=catalog.directory
    )
    kept = GroupWelcomeKeeper(
        sessions=sessions, declared=declared_in(catalog), templates=templates, clock=clock
    )
    yield kept
    await kept.aclose()


@pytest.fixture
def wecom(respx_mock: respx.MockRouter) -> dict[str, respx.Route]:
    """The fake WeCom: media/upload answers image-1, image-2 …, uploadimg PICURL, add msgT1."""
    count = iter(range(1, 100))

    def upload(request: httpx.Request) -> httpx.Response:
        return fake.ok(type="image", media_id=f"image-{next(count)}", created_at="1")

    api = "externalcontact/group_welcome_template"
    return {
        "token": fake.token_route(respx_mock),
        "upload": fake.api(respx_mock, "media/upload").mock(side_effect=upload),
        "uploadimg": fake.api(respx_mock, "media/uploadimg").mock(return_value=fake.ok(url=PICURL)),
        "add": fake.api(respx_mock, f"{api}/add").mock(return_value=fake.ok(template_id="msgT1")),
        "edit": fake.api(respx_mock, f"{api}/edit").mock(return_value=fake.ok()),
        "del": fake.api(respx_mock, f"{api}/del").mock(return_value=fake.ok()),
    }


async def stored(sessions: async_sessionmaker[AsyncSession]) -> StoredTemplate:
    async with unit_of_work(sessions) as session:
        (row,) = await repo.stored(session, [ID])
    return row


def calls(wecom: dict[str, respx.Route]) -> dict[str, int]:
    return {name: route.call_count for name, route in wecom.items() if name != "token"}


def rewrite(catalog: Catalog, old: str, new: str) -> None:
    file = catalog.directory / "gw.yaml"
    file.write_text(file.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    catalog.reload()


async def test_a_new_declaration_is_added_once_and_a_second_pass_calls_nothing(
    keeper: GroupWelcomeKeeper,
    wecom: dict[str, respx.Route],
    sessions: async_sessionmaker[AsyncSession],
    clock: FakeClock,
) -> None:
    assert await keeper.sync() == {ID: Action.ADD}

    assert fake.body(wecom["add"].calls[0]) == {
        "notify": 1,
        "text": {"content": "欢迎 %NICKNAME% 加入某某店会员群！"},
        "miniprogram": CARD,
    }
    row = await stored(sessions)
    assert (row.status, row.template_id, row.last_error) == (
        GroupWelcomeStatus.ACTIVE,
        "msgT1",
        None,
    )
    assert row.synced_at == clock.now
    before = calls(wecom)

    assert await keeper.sync() == {}
    assert calls(wecom) == before == {"upload": 1, "uploadimg": 0, "add": 1, "edit": 0, "del": 0}


async def test_a_changed_text_or_picture_is_edited_with_the_same_template_id(
    keeper: GroupWelcomeKeeper,
    catalog: Catalog,
    wecom: dict[str, respx.Route],
) -> None:
    await keeper.sync()
    rewrite(catalog, "会员群！", "会员群，群规见群公告。")

    assert await keeper.sync() == {ID: Action.EDIT}
    assert fake.body(wecom["edit"].calls[0]) == {
        "template_id": "msgT1",
        "text": {"content": "欢迎 %NICKNAME% 加入某某店会员群，群规见群公告。"},
        "miniprogram": CARD,  # the cover's media_id is still valid: not uploaded again
    }

    # The same file name with other bytes is other content.
    poster = catalog.directory / "media" / "poster.png"
    poster.write_bytes(poster.read_bytes() + b"\x00more")
    assert await keeper.sync() == {ID: Action.EDIT}
    assert fake.body(wecom["edit"].calls[1])["miniprogram"]["pic_media_id"] == "image-2"
    assert await keeper.sync() == {}
    assert calls(wecom) == {"upload": 2, "uploadimg": 0, "add": 1, "edit": 2, "del": 0}


async def test_a_removed_declaration_is_deleted_from_wecom(
    keeper: GroupWelcomeKeeper,
    catalog: Catalog,
    wecom: dict[str, respx.Route],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await keeper.sync()
    (catalog.directory / "gw.yaml").unlink()
    catalog.reload()

    assert await keeper.sync() == {ID: Action.DELETE}
    assert fake.body(wecom["del"].calls[0]) == {"template_id": "msgT1"}
    row = await stored(sessions)
    assert (row.status, row.template_id, row.content_hash) == (
        GroupWelcomeStatus.REMOVED,
        None,
        None,
    )
    assert await keeper.sync() == {}
    assert wecom["del"].call_count == 1


async def test_a_picture_goes_as_a_permanent_uploadimg_url(
    keeper: GroupWelcomeKeeper,
    catalog: Catalog,
    wecom: dict[str, respx.Route],
) -> None:
    card = "\n".join(PLAYBOOK.splitlines()[6:8])
    rewrite(catalog, card, "    - image: media/poster.png")
    rewrite(catalog, "  text:", "  notify: false\n  text:")

    await keeper.sync()

    assert fake.body(wecom["add"].calls[0]) == {
        "notify": 0,
        "text": {"content": "欢迎 %NICKNAME% 加入某某店会员群！"},
        "image": {"pic_url": PICURL},
    }
    assert wecom["upload"].call_count == 0


async def test_a_refusal_is_recorded_and_retried_when_due_or_at_the_next_reload(
    keeper: GroupWelcomeKeeper,
    wecom: dict[str, respx.Route],
    sessions: async_sessionmaker[AsyncSession],
    clock: FakeClock,
) -> None:
    wecom["add"].side_effect = [
        fake.err(45009, "api freq out of limit"),
        fake.err(-1, "system busy"),
        fake.ok(template_id="msgT9"),
    ]

    assert await keeper.sync() == {ID: Action.ADD}
    row = await stored(sessions)
    assert row.status is GroupWelcomeStatus.FAILED
    assert row.template_id is None
    assert "45009" in str(row.last_error)
    assert (row.attempts, row.retry_at) == (1, clock.now + timedelta(minutes=1))

    assert await keeper.sync(force=False) == {}  # not due yet: no call
    assert wecom["add"].call_count == 1
    clock.advance(minutes=1)
    keeper.tick()  # the retry is due: a pass in the background
    await keeper.settle()
    assert wecom["add"].call_count == 2
    row = await stored(sessions)
    assert (row.status, row.attempts) == (GroupWelcomeStatus.FAILED, 2)
    assert row.retry_at == clock.now + timedelta(minutes=2)

    keeper.kick()  # a reload retries at once
    await keeper.settle()
    row = await stored(sessions)
    assert (row.status, row.template_id, row.attempts, row.last_error) == (
        GroupWelcomeStatus.ACTIVE,
        "msgT9",
        0,
        None,
    )


async def test_content_that_cannot_be_made_is_recorded_without_calling_wecom(
    keeper: GroupWelcomeKeeper,
    catalog: Catalog,
    wecom: dict[str, respx.Route],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    rewrite(catalog, "vars.shop_name", "vars.shop_slogan")

    assert await keeper.sync() == {ID: Action.SETTLE}
    row = await stored(sessions)
    assert row.status is GroupWelcomeStatus.FAILED
    assert "shop_slogan" in str(row.last_error)
    assert await keeper.sync() == {}  # the same error: nothing to do until the files change
    assert calls(wecom) == {"upload": 0, "uploadimg": 0, "add": 0, "edit": 0, "del": 0}

    rewrite(catalog, "vars.shop_slogan", "vars.shop_name")
    assert await keeper.sync() == {ID: Action.ADD}


async def test_without_wecom_nothing_is_called_and_it_is_said_once(
    catalog: Catalog,
    sessions: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    keeper = GroupWelcomeKeeper(
        sessions=sessions, declared=declared_in(catalog), templates=None, clock=clock
    )
    caplog.set_level(logging.INFO, logger="smr.services.group_welcome")

    results: list[Any] = [await keeper.sync(), await keeper.sync()]

    assert results == [{}, {}]
    said = [r.getMessage() for r in caplog.records if "not configured" in r.getMessage()]
    assert len(said) == 1
    assert "1 declared templates" in said[0]
    async with unit_of_work(sessions) as session:
        assert await repo.stored(session) == []
