"""POST /v1/simulate: the timeline over virtual time, validation, and no side effects."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from smr.models import Base
from smr.runtime import Runtime
from tests.helpers import INGEST, auth, order_event

REMINDER = """\
id: reminder
name: 提醒
trigger:
  event: order.paid
steps:
  - wait: 2d
  - send: {channel: wecom, text: "{{ contact.name }}，{{ vars.shop_name }}提醒您"}
"""


def on_wecom(event: dict[str, Any]) -> dict[str, Any]:
    """The event's customer also known on WeCom, with an owner staff: the thank-you the bundled
    playbooks send there can reach them (the simulator skips what production could not)."""
    wecom = {"wecom_userid": "wm-1", "attributes": {"wecom_owner": "zhangsan"}}
    return {**event, "contact": {**event["contact"], **wecom}}


async def row_counts(runtime: Runtime) -> dict[str, int]:
    async with runtime.sessions() as session:
        return {
            table.name: int(await session.scalar(select(func.count()).select_from(table)) or 0)
            for table in Base.metadata.sorted_tables
        }


async def simulate(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post("/v1/simulate", json=body, headers=auth())


async def test_simulation_leaves_no_trace_in_the_service(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    posted = await client.post("/v1/events", json=order_event("real-1"), headers=auth(INGEST))
    assert posted.status_code == 202
    before = await row_counts(runtime)
    assert before["events"] == before["deliveries"] == 1

    response = await simulate(client, {"event": on_wecom(order_event("sim-1")), "horizon": "7d"})

    assert response.status_code == 200, response.text
    sent = [e for e in response.json()["timeline"] if e["kind"] == "send"]
    assert [(e["playbook"], e["status"]) for e in sent] == [("order-thank-you", "sent")]
    assert await row_counts(runtime) == before
    (delivery,) = (await client.get("/v1/deliveries", headers=auth())).json()["items"]
    assert delivery["status"] == "sent"  # the real one, as its event was processed
    outbox = (await client.get("/v1/mock/outbox", headers=auth())).json()["items"]
    assert [m["delivery_id"] for m in outbox] == [delivery["id"]]


async def test_service_playbooks_and_policies_are_simulated(client: httpx.AsyncClient) -> None:
    response = await simulate(client, {"event": on_wecom(order_event("o-1"))})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["timezone"] == "Asia/Shanghai"
    assert body["start"] == "2026-11-23T10:00:00+08:00"
    assert body["end"] == "2027-01-22T10:00:00+08:00"  # 60 days by default
    rows = [
        (e["at"], e["playbook"], e["step"], e["kind"], e["status"])
        for e in body["timeline"]
        if e["kind"] != "event"
    ]
    assert rows == [
        ("2026-11-23T10:00:00+08:00", "order-thank-you", "", "start", "started"),
        ("2026-11-23T10:00:00+08:00", "order-thank-you", "steps[0]", "tag", None),
        ("2026-11-23T10:00:00+08:00", "order-thank-you", "steps[1]", "if", "false"),
        ("2026-11-23T10:00:00+08:00", "order-thank-you", "steps[2]", "send", "sent"),
        ("2026-11-23T10:00:00+08:00", "order-thank-you", "", "end", "completed"),
    ]
    send = body["timeline"][4]
    assert send["channel"] == "wecom"
    assert send["text"] == "小王，感谢您在某某旗舰店下单（订单 order-o-1，¥99）！"
    assert body["contact"]["tags"] == ["已购"]
    assert body["contact"]["stats"]["orders"] == 1
    assert body["errors"] == []


async def test_posted_playbook_runs_alone_with_later_events(client: httpx.AsyncClient) -> None:
    later = {"type": "contact.unsubscribed", "occurred_at": "2026-11-24T10:00:00+08:00"}
    body = {"event": order_event("o-1"), "events": [later], "playbooks": REMINDER}

    response = await simulate(client, body)

    assert response.status_code == 200, response.text
    timeline = response.json()["timeline"]
    assert {e["playbook"] for e in timeline} == {"", "reminder"}
    (send,) = [e for e in timeline if e["kind"] == "send"]
    assert (send["at"], send["status"], send["reason"]) == (
        "2026-11-25T10:00:00+08:00",
        "skipped",
        "opted_out",
    )
    assert send["text"] == "小王，某某旗舰店提醒您"
    events = [e["text"] for e in timeline if e["kind"] == "event"]
    assert events == ["order.paid (o-1)", "contact.unsubscribed (simulated-1)"]


async def test_bad_playbook_yaml_is_422_with_where(client: httpx.AsyncClient) -> None:
    bad = REMINDER.replace("wait: 2d", "wait: soon")

    response = await simulate(client, {"event": order_event("o-1"), "playbooks": bad})

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    (error,) = response.json()["errors"]
    assert (error["file"], error["line"], error["column"], error["path"]) == (
        "playbook.yaml",
        6,
        11,
        "steps[0].wait",
    )
    assert "bad duration 'soon'" in error["message"]


async def test_invalid_body_is_422_with_field_paths(client: httpx.AsyncClient) -> None:
    response = await simulate(client, {"event": order_event("o-1"), "horizon": "400d", "x": 1})

    assert response.status_code == 422
    paths = {e["path"]: e["message"] for e in response.json()["errors"]}
    assert set(paths) == {"horizon", "x"}
    assert "at most 366d" in paths["horizon"]


async def test_invalid_events_are_422_with_their_paths(client: httpx.AsyncClient) -> None:
    early = {"type": "order.refunded", "occurred_at": "2026-11-22T10:00:00+08:00"}
    first = {k: v for k, v in order_event("o-1").items() if k != "type"}
    body = {"event": first, "events": [early]}

    response = await simulate(client, body)

    assert response.status_code == 422
    paths = [e["path"] for e in response.json()["errors"]]
    assert paths == ["event.type", "events[0].data.order_id", "events[0].data.total"]


async def test_simulate_needs_an_admin_token(client: httpx.AsyncClient) -> None:
    body = {"event": order_event("o-1")}

    ingest = await client.post("/v1/simulate", json=body, headers=auth(INGEST))
    anonymous = await client.post("/v1/simulate", json=body)

    assert (ingest.status_code, anonymous.status_code) == (403, 401)
