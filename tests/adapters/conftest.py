"""Adapter fixtures: a migrated database (SQLite, and PostgreSQL when configured) and rows to
seed it with."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smr.db import create_engine, session_factory, unit_of_work
from smr.models import Contact, Delivery, Event, Run


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    yield session_factory(engine)
    await engine.dispose()


async def seed_kf(
    sessions: async_sessionmaker[AsyncSession],
    *,
    now: datetime,
    messages: Sequence[datetime],
    sent: Sequence[datetime] = (),
    open_kfid: str = "wk-shop",
    contact_id: str = "ct_1",
) -> None:
    """A contact whose customer wrote via 微信客服 at ``messages`` and was answered at ``sent``."""
    async with unit_of_work(sessions) as session:
        session.add(_contact(contact_id, now))
        await session.flush()
        for i, at in enumerate(messages):
            data = {"text": "在吗", "open_kfid": open_kfid}
            session.add(_event(f"ev_{i:04d}", contact_id, at, data))
        session.add(_run("rn_1", contact_id, now))
        await session.flush()
        for i, at in enumerate(sent):
            session.add(_delivery(f"dl_sent_{i:04d}", "rn_1", contact_id, at))


def _contact(contact_id: str, now: datetime) -> Contact:
    return Contact(
        id=contact_id,
        tags=[],
        attributes={},
        opted_out=[],
        orders=0,
        total_spent=Decimal(0),
        created_at=now,
        updated_at=now,
    )


def _event(event_id: str, contact_id: str, at: datetime, data: dict[str, str]) -> Event:
    return Event(
        id=event_id,
        source="wecom",
        key=event_id,
        type="chat.message",
        occurred_at=at,
        received_at=at,
        contact_id=contact_id,
        data=data,
        evaluations=[],
    )


def _run(run_id: str, contact_id: str, now: datetime) -> Run:
    return Run(
        id=run_id,
        contact_id=contact_id,
        playbook_id="keyword-price",
        playbook_version="v1",
        status="completed",
        pc=0,
        started_at=now,
        updated_at=now,
    )


def _delivery(delivery_id: str, run_id: str, contact_id: str, at: datetime) -> Delivery:
    return Delivery(
        id=delivery_id,
        run_id=run_id,
        contact_id=contact_id,
        playbook_id="keyword-price",
        step=delivery_id,
        channel="wecom_kf",
        category="service",
        params={},
        status="sent",
        due_at=at,
        sent_at=at,
        attempts=1,
        created_at=at,
        updated_at=at,
    )
