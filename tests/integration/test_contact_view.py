"""What templates read of a contact besides its profile, on every test database: when it was
last seen and last wrote, and the channels its identities reach."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from smr.models import Delivery
from smr.runtime import Runtime
from tests.conftest import CORE
from tests.helpers import INGEST, auth, contact_of

PROBE = """
id: probe
name: 探针
mode: parallel
trigger: {event: probe.asked}
steps:
  - send:
      channel: mock
      category: service
      text: >-
        {{ contact.channels | join(',') }}|{{ contact.last_seen_at.day }}|{{
        contact.last_message_at.day if contact.last_message_at else '-' }}
"""


@pytest.fixture
def playbooks_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "playbooks"
    folder.mkdir()
    shutil.copy(CORE / "policies.yaml", folder / "policies.yaml")
    (folder / "probe.yaml").write_text(PROBE.lstrip(), encoding="utf-8")
    return folder


def event(key: str, kind: str, day: int, contact: dict[str, Any], **data: Any) -> dict[str, Any]:
    return {
        "id": key,
        "type": kind,
        "occurred_at": f"2026-11-{day:02d}T10:00:00+08:00",
        "contact": contact,
        "data": data,
    }


async def probes(runtime: Runtime) -> list[str | None]:
    async with runtime.sessions() as session:
        stmt = select(Delivery.text).where(Delivery.playbook_id == "probe")
        return list((await session.scalars(stmt.order_by(Delivery.created_at))).all())


async def test_templates_read_when_the_contact_was_last_seen_and_the_channels_it_has(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    phone = {"phone": "13800000000"}
    await client.post("/v1/events", json=event("p-1", "probe.asked", 3, phone), headers=auth())
    await client.post(
        "/v1/events", json=event("m-1", "chat.message", 5, phone, text="在吗"), headers=auth()
    )
    friend = {**phone, "wecom_userid": "wm-1", "attributes": {"wecom_owner": "zhang"}}
    # An event that happened earlier, received later: the latest time stays.
    await client.post("/v1/events", json=event("a-1", "contact.added", 4, friend), headers=auth())
    answer = await client.post(
        "/v1/events", json=event("p-2", "probe.asked", 9, phone), headers=auth(INGEST)
    )

    assert await probes(runtime) == ["mock,sms|3|-", "mock,sms,wecom,wecom_kf|9|5"]
    contact_id = await contact_of(client, answer.json())
    contact = (await client.get(f"/v1/contacts/{contact_id}", headers=auth())).json()
    assert contact["last_seen_at"].startswith("2026-11-09T")
    assert contact["last_message_at"].startswith("2026-11-05T")
