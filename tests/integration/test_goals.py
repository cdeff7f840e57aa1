"""Goals and conversion: a run converts when its contact's goal event comes within the window
after its first sent message, once, when the goal's ``if`` holds; the report counts it. On
every test database."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from smr.runtime import Runtime
from tests.conftest import CORE
from tests.helpers import INGEST, FakeClock, auth

FIRST_ORDER = """\
id: first-order
name: 首单
trigger: {event: contact.added}
goal: {event: order.paid, within: 7d, if: "event.data.total >= 50"}
steps:
  - send: {channel: mock, category: service, text: 欢迎，首单满 50 有礼}
  - wait: 30d
  - send: {channel: mock, category: service, text: 好久不见}
"""


@pytest.fixture
def playbooks_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "playbooks"
    shutil.copytree(CORE, folder)
    (folder / "first-order.yaml").write_text(FIRST_ORDER, encoding="utf-8")
    return folder


def event(key: str, kind: str, phone: str, clock: FakeClock, **data: Any) -> dict[str, Any]:
    return {
        "id": key,
        "type": kind,
        "occurred_at": clock.now.isoformat(),
        "contact": {"phone": phone},
        "data": data,
    }


def paid(key: str, phone: str, clock: FakeClock, total: int) -> dict[str, Any]:
    return event(key, "order.paid", phone, clock, order_id=key, total=total)


async def post(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    answer = await client.post("/v1/events", json=body, headers=auth(INGEST))
    assert answer.status_code == 202, answer.text


async def test_a_run_converts_once_within_the_window_when_the_goal_holds(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    for phone in ("13800000001", "13800000002", "13800000003"):
        await post(client, event(f"add-{phone}", "contact.added", phone, clock))
    await runtime.dispatcher.tick()
    clock.advance(days=2)
    await post(client, paid("too-small", "13800000003", clock, total=10))  # the if is false
    clock.advance(days=1)
    first = paid("first", "13800000001", clock, total=99)  # day 3: converts
    again = paid("again", "13800000001", clock, total=99)  # in the same batch: once
    answer = await client.post("/v1/events", json={"events": [first, again]}, headers=auth(INGEST))
    assert answer.status_code == 202, answer.text
    clock.advance(days=5)
    await post(client, paid("late", "13800000002", clock, total=99))  # day 8: too late

    found = await client.get(
        "/v1/playbooks/first-order/report", params={"since": "30d"}, headers=auth()
    )
    runs = await client.get("/v1/runs", params={"playbook": "first-order"}, headers=auth())

    assert found.status_code == 200, found.text
    assert (found.json()["runs"]["started"], found.json()["runs"]["converted"]) == (3, 1)
    traces = {}
    for run in runs.json()["items"]:
        detail = (await client.get(f"/v1/runs/{run['id']}", headers=auth())).json()
        traces[detail["contact_id"]] = [t for t in detail["trace"] if t["kind"] == "goal"]
    goals = [entries for entries in traces.values() if entries]
    assert len(goals) == 1
    ((entry,),) = goals
    assert entry["event"] == "order.paid"
    converting = await client.get(f"/v1/events/{entry['event_id']}", headers=auth())
    assert converting.json()["key"] == "first"  # the first of the batch's two orders
