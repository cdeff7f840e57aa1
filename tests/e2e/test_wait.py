"""Real waits of seconds, end to end through `smr serve` and its ticker, also across a kill -9
and a restart of the service in the middle of the wait."""

from __future__ import annotations

import signal
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from smr.runtime import Runtime
from tests.e2e.processes import eventually, free_port, serving, smr_env, start, stop
from tests.helpers import INGEST
from tests.integration.journeys import outbox_texts

PLAYBOOK = """\
id: two-step
name: two step
trigger: {event: contact.added}
steps:
  - send: {channel: mock, category: service, text: now}
  - wait: %(wait)s
  - send: {channel: mock, category: service, text: later}
"""
EVENT = {
    "id": "a-1",
    "type": "contact.added",
    "occurred_at": "2026-11-23T10:00:00+08:00",
    "contact": {"wecom_userid": "wm-1"},
}
ADMIN = {"Authorization": "Bearer admin"}


def serve_env(tmp_path: Path, *, wait: str, **overrides: str) -> dict[str, str]:
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir(exist_ok=True)
    (playbooks / "two-step.yaml").write_text(PLAYBOOK % {"wait": wait})
    return smr_env(
        SMR_PLAYBOOKS_DIR=str(playbooks),
        SMR_DATA_DIR=str(tmp_path / "data"),
        SMR_ADMIN_TOKENS="admin",
        SMR_INGEST_TOKENS=INGEST,
        SMR_TICK_SECONDS="0.2",
        **overrides,
    )


async def test_two_second_wait_sends_the_second_message_after_it(tmp_path: Path) -> None:
    port = free_port()
    env = serve_env(tmp_path, wait="2s")
    log = tmp_path / "serve.log"
    proc = start(["serve", "--port", str(port)], env=env, log=log)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as c:
            await serving(c, proc, log)
            event_id = await _ingest(c)
            items = await eventually(lambda: _outbox(c, want=2))
            stored, deliveries = await _event_and_deliveries(c, event_id)
    finally:
        stop(proc)

    sent = {i["text"]: datetime.fromisoformat(i["sent_at"]) for i in items}
    assert set(sent) == {"now", "later"}
    # The wait counts from when the run started (the event's ingest), not from the first send.
    started = datetime.fromisoformat(stored["received_at"])
    (later,) = [d for d in deliveries if d["text"] == "later"]
    due = datetime.fromisoformat(later["due_at"])
    assert (due - started).total_seconds() == 2
    assert sent["later"] >= due > sent["now"]


async def test_a_service_killed_during_the_wait_sends_the_rest_once_after_restart(
    tmp_path: Path, database_url: str, runtime: Runtime
) -> None:
    # The restarted service takes the killed one's partitions, and the run waiting in one of
    # them, once their lease runs out.
    env = serve_env(
        tmp_path, wait="4s", SMR_DATABASE_URL=database_url, SMR_INGEST__LEASE_SECONDS="3"
    )
    log = tmp_path / "serve.log"
    port = free_port()
    proc = start(["serve", "--port", str(port)], env=env, log=log)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
            await serving(c, proc, log)
            event_id = await _ingest(c)
            # Killed once the first message is sent and recorded, while the run waits (a kill
            # between the vendor's answer and its record is test_crash's subject).
            await eventually(lambda: _recorded(c, want=1))
    finally:
        stop(proc, sig=signal.SIGKILL)
    assert len(await outbox_texts(runtime)) == 1  # killed while the run waits

    port = free_port()
    proc = start(["serve", "--port", str(port)], env=env, log=log)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
            await serving(c, proc, log)
            await eventually(lambda: _recorded(c, want=2))
            items = await _outbox(c, want=2)
            stored, deliveries = await _event_and_deliveries(c, event_id)
    finally:
        stop(proc)

    assert items is not None
    assert sorted(i["text"] for i in items) == ["later", "now"]
    assert [(d["status"], d["attempts"]) for d in deliveries] == [("sent", 1), ("sent", 1)]
    (later,) = [d for d in deliveries if d["text"] == "later"]
    started = datetime.fromisoformat(stored["received_at"])
    assert (datetime.fromisoformat(later["due_at"]) - started).total_seconds() == 4


async def _ingest(c: httpx.AsyncClient) -> str:
    accepted = await c.post("/v1/events", json=EVENT, headers={"Authorization": f"Bearer {INGEST}"})
    assert accepted.status_code == 202
    event_id: str = accepted.json()["event_id"]
    return event_id


async def _event_and_deliveries(
    c: httpx.AsyncClient, event_id: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    stored: dict[str, Any] = (await c.get(f"/v1/events/{event_id}", headers=ADMIN)).json()
    deliveries: list[dict[str, Any]] = (await c.get("/v1/deliveries", headers=ADMIN)).json()[
        "items"
    ]
    return stored, deliveries


async def _recorded(c: httpx.AsyncClient, *, want: int) -> bool:
    """``want`` deliveries have their outcome recorded (the mock's outbox row comes first)."""
    items = (await c.get("/v1/deliveries", headers=ADMIN)).json()["items"]
    return len(items) >= want and all(d["status"] == "sent" for d in items)


async def _outbox(c: httpx.AsyncClient, *, want: int) -> list[dict[str, str]] | None:
    items: list[dict[str, str]] = (await c.get("/v1/mock/outbox", headers=ADMIN)).json()["items"]
    return items if len(items) >= want else None
