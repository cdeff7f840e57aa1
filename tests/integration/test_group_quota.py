"""WeCom delivers at most as many mass-sends to a customer group a month as the month has
days: a group's own posts past that are skipped (quota_exhausted) before a task is made, and
the run log says why."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
import respx
from pydantic import SecretStr
from sqlalchemy import select

from adapters.wecom import WeComClient, WeComGroupTasks
from smr.channels import SendResult, SkippedSend
from smr.db import unit_of_work
from smr.ids import new_id
from smr.models import Delivery
from smr.runtime import Runtime
from tests.adapters import wecom_fake as fake
from tests.conftest import CORE
from tests.helpers import FakeClock
from tests.integration.test_schedule_targets import CHECK_IN, add_groups

NOVEMBER = 30  # days, so 30 mass-sends


@pytest.fixture
def playbooks_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "playbooks"
    shutil.copytree(CORE, directory)
    (directory / "check-in.yaml").write_text(CHECK_IN, encoding="utf-8")
    return directory


async def test_a_group_past_its_monthly_quota_gets_no_task(
    runtime: Runtime, clock: FakeClock, respx_mock: respx.MockRouter
) -> None:
    await runtime.start()
    await add_groups(
        runtime, ("wrA", "会员一群", "zhangsan", []), ("wrB", "会员二群", "zhangsan", [])
    )
    clock.advance(hours=1, minutes=1)
    await runtime.cron.tick()
    await runtime.processor.drain()
    async with unit_of_work(runtime.sessions) as session:
        due = {d.contact_id: d for d in await session.scalars(select(Delivery))}
        earlier = due["group:wrA"]
        for n in range(NOVEMBER):  # this month's posts to wrA that WeCom took
            session.add(
                _copy(earlier, step=f"{earlier.step}#{n}", due_at=clock() - timedelta(days=n % 20))
            )
    fake.token_route(respx_mock)
    created = fake.api(respx_mock, "externalcontact/add_msg_template").mock(
        return_value=fake.ok(fail_list=[], msgid="msgGROUP1")
    )
    client = WeComClient(corp_id=fake.CORP_ID, base_url=fake.BASE, timeout=5)
    tasks = WeComGroupTasks(
        client,
        SecretStr(fake.SECRET),
        clock=clock,
        timeout=timedelta(hours=72),
        sessions=runtime.sessions,
    )
    messages = [
        fake.message(
            due[f"group:{chat}"].id,
            channel="wecom_group",
            text="打卡",
            chat_id=chat,
            owner_staff="zhangsan",
        )
        for chat in ("wrA", "wrB")
    ]

    try:
        over, sent = await tasks.send_batch(messages)
    finally:
        await client.aclose()

    assert isinstance(over, SkippedSend)
    assert over.reason == "quota_exhausted"
    assert over.response == (
        "group wrA has had 30 mass-sends since 2026-11-01; "
        "WeCom delivers at most 30 a month (the days in the month)"
    )
    assert isinstance(sent, SendResult)
    assert sent.awaiting
    [call] = created.calls
    assert json.loads(call.request.content)["chat_id_list"] == ["wrB"]


def _copy(row: Delivery, **changes: object) -> Delivery:
    columns = {c.key: getattr(row, c.key) for c in Delivery.__table__.columns}
    return Delivery(**{**columns, "id": new_id("dl", row.created_at), "status": "sent", **changes})
