"""Schedule playbooks that run per customer group (``groups``) or once for the corp (``once``):
each group runs as its own contact row, kept up to date with the group, and posts into it as
its owner; the corp runs once per firing. Neither counts against customers' caps."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from smr.db import unit_of_work
from smr.models import Contact, Delivery, Group, GroupTag, Run
from smr.repositories import Record
from smr.repositories import contacts as contacts_repo
from smr.runtime import Runtime
from smr.services.addressing import recipients
from smr.services.contacts import ContactState
from smr.subjects import ContactKind
from tests.conftest import CORE
from tests.helpers import FakeClock

CHECK_IN = """\
id: group-check-in
name: 群打卡提醒
trigger:
  schedule: "0 * * * *"
  groups: {owner: [zhangsan, lisi], name_contains: 会员, tags_none: [停用]}
steps:
  - send: {channel: wecom_group, text: "{{ contact.name }}：今天也来打卡吧"}
"""

CALENDAR = """\
id: moments-calendar
name: 朋友圈日历
trigger: {schedule: "0 * * * *", once: true}
steps:
  - send: {channel: mock, text: "新品上市"}
"""


@pytest.fixture
def playbooks_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "playbooks"
    shutil.copytree(CORE, directory)
    (directory / "check-in.yaml").write_text(CHECK_IN, encoding="utf-8")
    (directory / "calendar.yaml").write_text(CALENDAR, encoding="utf-8")
    return directory


async def add_groups(runtime: Runtime, *specs: tuple[str, str, str, list[str]]) -> None:
    """Groups (chat_id, name, owner, tags)."""
    now = runtime.clock()
    async with unit_of_work(runtime.sessions) as session:
        for chat_id, name, owner, tags in specs:
            session.add(
                Group(
                    chat_id=chat_id,
                    name=name,
                    owner=owner,
                    status="active",
                    owner_status="employed",
                    member_count=3,
                    updated_at=now,
                )
            )
            await session.flush()
            session.add_all(GroupTag(chat_id=chat_id, tag=tag) for tag in tags)


async def runs_of(runtime: Runtime, playbook_id: str) -> list[Run]:
    async with runtime.sessions() as session:
        stmt = select(Run).where(Run.playbook_id == playbook_id).order_by(Run.contact_id)
        return list((await session.scalars(stmt)).all())


async def test_a_groups_target_runs_once_per_matching_group_and_posts_as_its_owner(
    runtime: Runtime, clock: FakeClock
) -> None:
    await runtime.start()
    await add_groups(
        runtime,
        ("wrA", "会员一群", "zhangsan", []),
        ("wrB", "会员二群", "lisi", ["打卡"]),
        ("wrC", "会员三群", "wangwu", []),  # another owner
        ("wrD", "闲聊群", "zhangsan", []),  # name does not match
        ("wrE", "会员旧群", "zhangsan", ["停用"]),  # tagged out
    )
    clock.advance(hours=1, minutes=1)

    report = await runtime.cron.tick()
    await runtime.processor.drain()

    runs = await runs_of(runtime, "group-check-in")
    assert [r.contact_id for r in runs] == ["group:wrA", "group:wrB"]
    async with runtime.sessions() as session:
        groups = {
            c.id: c for c in await session.scalars(select(Contact).where(Contact.kind == "group"))
        }
        deliveries = list(
            await session.scalars(
                select(Delivery)
                .where(Delivery.playbook_id == "group-check-in")
                .order_by(Delivery.contact_id)
            )
        )
        rows = [
            Record(id=d.id, contact_id=d.contact_id, run_id=d.run_id, channel=d.channel)
            for d in deliveries
        ]
        found = await recipients(session, rows)
    assert report.runs_started == 3  # and the corp's calendar run
    assert groups["group:wrB"].tags == ["打卡"]
    assert groups["group:wrB"].attributes["wecom_owner"] == "lisi"
    assert [(d.channel, d.text) for d in deliveries] == [
        ("wecom_group", "会员一群：今天也来打卡吧"),
        ("wecom_group", "会员二群：今天也来打卡吧"),
    ]
    assert [found[d.id] for d in deliveries] == [
        {"chat_id": "wrA", "owner_staff": "zhangsan"},
        {"chat_id": "wrB", "owner_staff": "lisi"},
    ]


async def test_a_group_row_follows_the_group_at_each_firing(
    runtime: Runtime, clock: FakeClock
) -> None:
    await runtime.start()
    await add_groups(runtime, ("wrA", "会员一群", "zhangsan", []))
    clock.advance(hours=1, minutes=1)
    await runtime.cron.tick()
    async with unit_of_work(runtime.sessions) as session:
        group = await session.get(Group, "wrA")
        assert group is not None
        group.name, group.owner = "会员一群（新）", "lisi"
        session.add(GroupTag(chat_id="wrA", tag="打卡"))
    await runtime.processor.drain()  # the first firing's run ends before the next starts
    clock.advance(hours=1)

    await runtime.cron.tick()

    async with runtime.sessions() as session:
        row = await session.get(Contact, "group:wrA")
    assert row is not None
    assert (row.kind, row.name, row.tags) == (ContactKind.GROUP, "会员一群（新）", ["打卡"])
    assert row.attributes["wecom_owner"] == "lisi"
    assert len(await runs_of(runtime, "group-check-in")) == 2


async def test_once_runs_one_run_per_firing_for_the_corp(
    runtime: Runtime, clock: FakeClock
) -> None:
    await runtime.start()
    clock.advance(hours=1, minutes=1)
    await runtime.cron.tick()
    await runtime.processor.drain()
    clock.advance(hours=1)
    await runtime.cron.tick()

    runs = await runs_of(runtime, "moments-calendar")
    assert [r.contact_id for r in runs] == ["corp", "corp"]
    assert [r.started_at.hour for r in runs] == [4, 5]  # 12:00 and 13:00 in Shanghai
    async with runtime.sessions() as session:
        corp = await session.get(Contact, "corp")
        customers = await session.scalars(select(Contact.id).where(Contact.kind == "person"))
    assert corp is not None
    assert corp.kind == ContactKind.CORP
    assert list(customers) == []


async def test_customer_audiences_leave_groups_and_the_corp_out(
    runtime: Runtime, clock: FakeClock
) -> None:
    (runtime.settings.playbooks_dir / "all.yaml").write_text(
        "id: all-customers\nname: 全体\ntrigger: {schedule: '0 * * * *'}\n"
        "steps:\n  - send: {channel: mock, text: hi}\n",
        encoding="utf-8",
    )
    await runtime.reload_playbooks()
    await runtime.start()
    await add_groups(runtime, ("wrA", "会员一群", "zhangsan", []))
    clock.advance(hours=1, minutes=1)
    await runtime.cron.tick()  # makes group:wrA and corp
    await add_customer(runtime, "c1")
    clock.advance(hours=1)

    await runtime.cron.tick()

    runs = await runs_of(runtime, "all-customers")
    assert [r.contact_id for r in runs] == ["c1"]


async def add_customer(runtime: Runtime, contact_id: str) -> None:
    row = ContactState.blank(contact_id, runtime.clock(), partition=0).row(runtime.clock())
    async with unit_of_work(runtime.sessions) as session:
        assert await contacts_repo.insert_contacts(session, [row]) == {contact_id}
