"""Three `smr worker` processes on one PostgreSQL: 3,000 orders to process, each making a
delivery due, and a cron playbook firing every minute over 200 members. Every delivery is sent
once, every slot fires once."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, update

from smr.models import (
    Contact,
    CronSlot,
    Delivery,
    DeliveryAttempt,
    EventLogEntry,
    PlaybookVersion,
    Run,
)
from smr.playbooks import load_text
from smr.runtime import Runtime
from tests.conftest import CORE
from tests.e2e.processes import eventually, smr_env, start, stop
from tests.helpers import INGEST, auth, order_event

DELIVERIES, MEMBERS, WORKERS = 3000, 200, 3
MEMBER_DAY = """\
id: member-minute
name: 每分钟会员消息
trigger:
  schedule: "* * * * *"
  audience: {tags_any: [会员]}
steps:
  - send: {channel: mock, category: service, text: "会员专享 {{ trigger.data.slot }}"}
"""


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(postgres_url: str) -> str:
    return postgres_url


@pytest.fixture
def playbooks_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "playbooks"
    shutil.copytree(CORE, folder)
    (folder / "member-minute.yaml").write_text(MEMBER_DAY)
    return folder


async def scalar(runtime: Runtime, stmt: object) -> int:
    async with runtime.sessions() as session:
        return int(await session.scalar(stmt) or 0)  # type: ignore[call-overload]


async def test_three_workers_send_each_delivery_and_fire_each_slot_once(
    client: httpx.AsyncClient,
    accepting_client: httpx.AsyncClient,
    runtime: Runtime,
    playbooks_dir: Path,
    tmp_path: Path,
) -> None:
    await _seed(client, accepting_client, runtime, playbooks_dir)
    env = smr_env(
        SMR_DATABASE_URL=runtime.settings.effective_database_url,
        SMR_PLAYBOOKS_DIR=str(playbooks_dir),
        SMR_DATA_DIR=str(tmp_path / "data"),
        SMR_TICK_SECONDS="0.2",
        SMR_BATCH_SIZE="100",
    )
    workers = [start(["worker"], env=env, log=tmp_path / f"worker-{i}.log") for i in range(WORKERS)]
    settled: set[str] = set()
    try:
        await eventually(lambda: _settled(runtime, settled), limit=120)
    finally:
        for worker in workers:
            stop(worker)

    twice = select(DeliveryAttempt.delivery_id).where(DeliveryAttempt.outcome == "sent")
    twice = twice.group_by(DeliveryAttempt.delivery_id).having(func.count() > 1)
    assert await scalar(runtime, select(func.count()).select_from(twice.subquery())) == 0
    async with runtime.sessions() as session:
        slots = {s.id: s for s in await session.scalars(select(CronSlot))}
        per_slot = {
            slot_id: (runs, contacts)
            for slot_id, runs, contacts in await session.execute(
                select(Run.cron_slot_id, func.count(), func.count(func.distinct(Run.contact_id)))
                .where(Run.cron_slot_id.is_not(None))
                .group_by(Run.cron_slot_id)
            )
        }
        sent_per_slot = dict(
            (
                await session.execute(
                    select(Run.cron_slot_id, func.count())
                    .join(Delivery, Delivery.run_id == Run.id)
                    .where(Delivery.status == "sent", Run.cron_slot_id.is_not(None))
                    .group_by(Run.cron_slot_id)
                )
            ).all()
        )
        sent_orders = await session.scalar(
            select(func.count())
            .select_from(Delivery)
            .join(Run, Delivery.run_id == Run.id)
            .where(Delivery.status == "sent", Run.cron_slot_id.is_(None))
        )
    assert settled, "the schedule should have fired"
    # A slot done when everything had settled fired once for every member and sent to each.
    for slot_id in settled:
        assert slots[slot_id].runs_started == MEMBERS
        assert per_slot[slot_id] == (MEMBERS, MEMBERS)
        assert sent_per_slot[slot_id] == MEMBERS
    # The next minute may have begun firing as the workers stopped: never a member twice.
    for runs, contacts in per_slot.values():
        assert runs == contacts <= MEMBERS
    assert sent_orders == DELIVERIES


async def _seed(
    client: httpx.AsyncClient,
    accepting_client: httpx.AsyncClient,
    runtime: Runtime,
    playbooks_dir: Path,
) -> None:
    """The members, processed here (an event no playbook listens to), and the orders, left in
    the log for the workers."""
    members = [
        {"id": f"m-{i}", "type": "member.joined", "contact": {"phone": f"139{i:08d}"}, "data": {}}
        for i in range(MEMBERS)
    ]
    response = await client.post("/v1/events", json={"events": members}, headers=auth(INGEST))
    assert response.status_code == 202
    for first in range(0, DELIVERIES, 1000):
        keys = range(first, first + 1000)
        batch = [order_event(f"o-{i}", phone=f"138{i:08d}") for i in keys]
        response = await accepting_client.post(
            "/v1/events", json={"events": batch}, headers=auth(INGEST)
        )
        assert response.status_code == 202
    now = datetime.now(UTC)
    playbook, errors = load_text(MEMBER_DAY, filename="member-minute.yaml", channels=["mock"])
    assert playbook is not None, errors
    async with runtime.sessions() as session, session.begin():
        await session.execute(update(Contact).values(tags=["会员"]))  # the members alone so far
        # Known for ten minutes, so the latest minute fires at once instead of next minute.
        session.add(
            PlaybookVersion(
                version=playbook.version,
                playbook_id=playbook.id,
                file=str(playbooks_dir / "member-minute.yaml"),
                source=MEMBER_DAY,
                loaded_at=now - timedelta(minutes=10),
            )
        )


async def _settled(runtime: Runtime, settled: set[str]) -> bool:
    """True once a slot is done and nothing is waiting in the log, pending or due; `settled`
    gets the done slots."""
    async with runtime.sessions() as session:
        done = set(await session.scalars(select(CronSlot.id).where(CronSlot.status == "done")))
    pending = await scalar(
        runtime, select(func.count()).where(CronSlot.status.in_(["pending", "running"]))
    )
    open_deliveries = await scalar(
        runtime, select(func.count()).where(Delivery.status.in_(["scheduled", "sending"]))
    )
    logged = await scalar(runtime, select(func.count()).select_from(EventLogEntry))
    if done and pending == 0 and open_deliveries == 0 and logged == 0:
        settled.update(done)
        return True
    return False
