"""A real wait of two seconds, end to end through `smr serve` and its ticker."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import httpx

from tests.e2e.processes import eventually, free_port, serving, smr_env, start, stop
from tests.helpers import INGEST

PLAYBOOK = """\
id: two-step
name: two step
trigger: {event: contact.added}
steps:
  - send: {channel: mock, category: service, text: now}
  - wait: 2s
  - send: {channel: mock, category: service, text: later}
"""


async def test_two_second_wait_sends_the_second_message_after_it(tmp_path: Path) -> None:
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "two-step.yaml").write_text(PLAYBOOK)
    port = free_port()
    env = smr_env(
        SMR_PLAYBOOKS_DIR=str(playbooks),
        SMR_DATA_DIR=str(tmp_path / "data"),
        SMR_ADMIN_TOKENS="admin",
        SMR_INGEST_TOKENS=INGEST,
        SMR_TICK_SECONDS="0.2",
    )
    log = tmp_path / "serve.log"
    proc = start(["serve", "--port", str(port)], env=env, log=log)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as c:
            await serving(c, proc, log)
            event = {
                "id": "a-1",
                "type": "contact.added",
                "occurred_at": "2026-11-23T10:00:00+08:00",
                "contact": {"wecom_userid": "wm-1"},
            }
            headers = {"Authorization": f"Bearer {INGEST}"}
            accepted = await c.post("/v1/events", json=event, headers=headers)
            assert accepted.status_code == 202
            items = await eventually(lambda: _outbox(c, want=2))
            admin = {"Authorization": "Bearer admin"}
            stored = (
                await c.get(f"/v1/events/{accepted.json()['event_id']}", headers=admin)
            ).json()
            deliveries = (await c.get("/v1/deliveries", headers=admin)).json()["items"]
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


async def _outbox(c: httpx.AsyncClient, *, want: int) -> list[dict[str, str]] | None:
    items: list[dict[str, str]] = (
        await c.get("/v1/mock/outbox", headers={"Authorization": "Bearer admin"})
    ).json()["items"]
    return items if len(items) >= want else None
