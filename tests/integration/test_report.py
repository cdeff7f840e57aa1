"""A playbook's report: its funnel counted as runs and messages are decided, summed over local
days, on every test database."""

from __future__ import annotations

import asyncio
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from smr.cli import app
from smr.models import PlaybookCount
from smr.runtime import Runtime
from tests.conftest import CORE
from tests.helpers import INGEST, FakeClock, auth, order_event

NUDGE = """\
id: nudge
name: 提醒
mode: parallel
trigger: {event: order.paid}
steps:
  - send: {channel: mock, category: marketing, text: 嗨}
  - wait: 1d
  - send: {channel: mock, category: marketing, text: 再见}
"""


@pytest.fixture
def playbooks_dir(tmp_path: Path) -> Path:
    """The core playbooks, and one that sends marketing, waits a day and sends again."""
    folder = tmp_path / "playbooks"
    shutil.copytree(CORE, folder)
    (folder / "nudge.yaml").write_text(NUDGE, encoding="utf-8")
    return folder


def chat(key: str, text: str, *, phone: str = "13800000001") -> dict[str, Any]:
    return {
        "id": key,
        "type": "chat.message",
        "contact": {"phone": phone, "wecom_userid": f"wm{phone}"},
        "data": {"text": text},
    }


async def report(client: httpx.AsyncClient, playbook: str, **params: str) -> Any:
    answer = await client.get(f"/v1/playbooks/{playbook}/report", params=params, headers=auth())
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_the_report_counts_runs_refusals_and_each_send_steps_messages(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    for key, phone in [("o-1", "13800000001"), ("o-2", "13800000002"), ("o-3", "13800000001")]:
        await client.post("/v1/events", json=order_event(key, phone=phone), headers=auth(INGEST))
    for key in ("c-1", "c-2"):  # the second within keyword-price's one-minute cooldown
        await client.post("/v1/events", json=chat(key, "多少钱"), headers=auth(INGEST))
    await runtime.dispatcher.tick()

    thanks = await report(client, "order-thank-you")
    price = await report(client, "keyword-price")

    assert thanks["runs"]["started"] == 3
    assert thanks["runs"]["completed"] == 3
    (send,) = thanks["steps"]
    assert (send["step"], send["scheduled"], send["sent"], send["skipped"]) == ("steps[2]", 3, 3, 0)
    assert [v["runs"]["started"] for v in thanks["versions"]] == [3]
    today = clock.now.astimezone(runtime.catalog.policies.tz).date().isoformat()
    assert [(d["day"], d["started"], d["sent"]) for d in thanks["days"]] == [(today, 3, 3)]
    assert (thanks["until"], thanks["loaded"], thanks["timezone"]) == (today, True, "Asia/Shanghai")
    assert price["runs"]["started"] == 1
    assert (price["runs"]["refused"], price["runs"]["refused_by"]) == (1, {"refused_cooldown": 1})


async def test_a_day_outside_the_range_is_not_counted_and_the_shards_add_up(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    await client.post("/v1/events", json=order_event("o-1"), headers=auth(INGEST))
    clock.advance(days=2)
    for key in ("o-2", "o-3"):
        await client.post("/v1/events", json=order_event(key), headers=auth(INGEST))
    today = clock.now.astimezone(runtime.catalog.policies.tz).date()

    recent = await report(client, "order-thank-you", since="1d")
    everything = await report(client, "order-thank-you", since="3d")

    assert (recent["since"], recent["runs"]["started"]) == (today.isoformat(), 2)
    assert everything["runs"]["started"] == 3
    assert [d["started"] for d in everything["days"]] == [1, 2]
    async with runtime.sessions() as session:  # each transaction added to a shard of its own
        stored = select(func.sum(PlaybookCount.n)).where(
            PlaybookCount.playbook_id == "order-thank-you", PlaybookCount.metric == "run.started"
        )
        assert await session.scalar(stored) == 3


async def test_a_bad_range_is_a_422_naming_the_parameter(client: httpx.AsyncClient) -> None:
    for params, path in [
        ({"since": "yesterday"}, "query.since"),
        ({"until": "2026-13-01"}, "query.until"),
        ({"since": "2026-12-01", "until": "2026-11-01"}, "query.since"),
        ({"since": "400d"}, "query.since"),
    ]:
        answer = await client.get(
            "/v1/playbooks/order-thank-you/report", params=params, headers=auth()
        )
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert [e["path"] for e in answer.json()["errors"]] == [path]


async def test_smr_report_prints_a_playbooks_funnel_and_every_playbooks_line(
    client: httpx.AsyncClient,
    runtime: Runtime,
    clock: FakeClock,
    database_url: str,
    playbooks_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key in ("o-1", "o-2"):
        await client.post("/v1/events", json=order_event(key), headers=auth(INGEST))
    await runtime.dispatcher.tick()
    monkeypatch.setenv("SMR_DATABASE_URL", database_url)
    monkeypatch.setenv("SMR_PLAYBOOKS_DIR", str(playbooks_dir))
    monkeypatch.setenv("SMR_DATA_DIR", str(tmp_path / "data"))

    day = clock.now.astimezone(runtime.catalog.policies.tz).date().isoformat()
    days = ["--since", day, "--until", day]  # the command's clock is the wall's

    # In a thread: the command runs its own event loop, as from a shell.
    one = await asyncio.to_thread(CliRunner().invoke, app, ["report", "order-thank-you", *days])
    every = await asyncio.to_thread(CliRunner().invoke, app, ["report", *days])
    bad = await asyncio.to_thread(CliRunner().invoke, app, ["report", "--since", "soon"])

    assert one.exit_code == 0, one.output
    lines = one.stdout.splitlines()
    header = ["STARTED", "REFUSED", "CONVERTED", "COMPLETED", "EXITED", "FAILED", "CANCELLED"]
    assert lines[1].split() == header
    assert lines[2].split() == ["2", "0", "0", "2", "0", "0", "0"]
    assert "steps[2]  2          2     0        0       0         0" in one.stdout
    assert every.exit_code == 0, every.output
    (thanks,) = [line.split() for line in every.stdout.splitlines() if "order-thank-you" in line]
    assert thanks == ["order-thank-you", "2", "0", "0", "2", "0", "0", "0", "2", "0", "0"]
    assert (bad.exit_code, bad.stderr.splitlines()[-1]) == (
        2,
        "since: 'soon' is not a day: write 2026-11-23, or 30d",
    )


async def test_an_admins_cancellations_count_for_the_run_and_the_message(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    tz = runtime.catalog.policies.tz
    clock.now = datetime.combine(clock.now.astimezone(tz).date(), datetime.min.time(), tz)
    clock.advance(hours=22)  # inside quiet hours: the first message waits for 09:00
    await client.post("/v1/events", json=order_event("o-1"), headers=auth(INGEST))
    listed = await client.get("/v1/deliveries", params={"status": "scheduled"}, headers=auth())
    (waiting,) = [d for d in listed.json()["items"] if d["playbook"] == "nudge"]

    cancelled = await client.post(f"/v1/deliveries/{waiting['id']}/cancel", headers=auth())
    ended = await client.post(f"/v1/runs/{waiting['run_id']}/cancel", headers=auth())

    assert (cancelled.status_code, ended.status_code) == (200, 200)
    found = await report(client, "nudge")
    assert (found["runs"]["started"], found["runs"]["cancelled"]) == (1, 1)
    (first,) = found["steps"]
    assert (first["step"], first["scheduled"], first["cancelled"], first["sent"]) == (
        "steps[0]",
        1,
        1,
        0,
    )
