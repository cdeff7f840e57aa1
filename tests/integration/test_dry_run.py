"""`delivery: dry_run`: every step runs and renders on real traffic; nothing reaches a customer."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from smr.runtime import Runtime
from tests.helpers import FakeClock
from tests.integration.journeys import deliveries, event, outbox_texts, post, runs

TRIAL = """\
id: trial
name: 试跑
delivery: dry_run
trigger:
  event: chat.message
  keywords: [试试]
steps:
  - tag: {add: [试跑过]}
  - send: {channel: wecom, category: service, text: "{{ contact.name }}，马上为您查询"}
  - wait: 1d
  - notify_staff: {text: "跟进 {{ contact.name }}"}
"""


@pytest.fixture
def playbooks_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "playbooks"
    folder.mkdir()
    (folder / "policies.yaml").write_text("timezone: Asia/Shanghai\n")
    (folder / "trial.yaml").write_text(TRIAL)
    return folder


async def test_dry_run_renders_every_delivery_and_sends_none(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    body = event("c-1", "chat.message", text="试试看")
    body["contact"]["name"] = "小李"
    await post(client, body)
    clock.advance(days=1)
    await runtime.tick()

    rows = await deliveries(runtime)
    assert [(d.channel, d.status, d.skip_reason, d.text) for d in rows] == [
        ("wecom", "skipped", "dry_run", "小李，马上为您查询"),
        ("staff", "skipped", "dry_run", "跟进 小李"),
    ]
    assert await outbox_texts(runtime) == []
    (run,) = await runs(runtime)
    assert run.status == "completed"
