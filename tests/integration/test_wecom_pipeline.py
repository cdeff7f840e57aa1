"""Events → playbooks → deliveries → WeCom (faked with respx) on a real database: the welcome's
priority path, mass-send tasks and their reports, 微信客服 windows and pulls, staff notices."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import select

from smr.models import ContactIdentity, Delivery, DeliveryAttempt, Event, WeComKfCursor
from smr.runtime import Runtime, build_runtime
from tests.adapters import wecom_fake as fake
from tests.conftest import CORE, make_settings
from tests.helpers import INGEST, FakeClock, auth
from tests.unit.inbound import wecom_support as v

PLAYBOOKS = {
    "member-day.yaml": """
id: member-day
name: member-day
mode: parallel
trigger: {event: member.day}
steps:
  - send: {channel: wecom, category: service, text: "周五会员日，全场 8 折"}
""",
    "group-hello.yaml": """
id: group-hello
name: group-hello
mode: parallel
trigger: {event: group.joined}
steps:
  - send: {channel: wecom_group, category: service, text: "欢迎入群"}
""",
    "kf-burst.yaml": """
id: kf-burst
name: kf-burst
mode: parallel
trigger: {event: chat.message, keywords: [活动]}
steps:
"""
    + "".join(
        f"  - send: {{channel: wecom_kf, category: service, text: '活动第{i}条'}}\n"
        for i in range(1, 7)
    ),
    "kf-late.yaml": """
id: kf-late
name: kf-late
trigger: {event: chat.message, keywords: [稍后]}
steps:
  - wait: 49h
  - send: {channel: wecom_kf, category: service, text: "还在吗"}
""",
    "promo.yaml": """
id: promo
name: promo
mode: parallel
trigger: {event: promo.start}
steps:
  - send: {channel: wecom, text: "新品上市"}
  - wait: 1h
  - send: {channel: mock, text: "再提醒一次"}
""",
    "churn.yaml": """
id: churn
name: churn
mode: parallel
trigger: {event: contact.deleted}
steps:
  - notify_staff: {text: "客户 {{ contact.name }} 删除了您"}
""",
}


@pytest.fixture
def playbooks_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "playbooks"
    shutil.copytree(CORE, folder)
    for name, text in PLAYBOOKS.items():
        (folder / name).write_text(text.lstrip(), encoding="utf-8")
    return folder


@pytest.fixture
async def runtime(
    database_url: str, playbooks_dir: Path, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Runtime]:
    """A runtime with every WeCom channel configured against the fake WeCom, and callbacks
    signed with the official example's keys."""
    wecom = fake.with_callbacks()
    # One dispatch lane: tasks batch what one claim took; two lanes on PostgreSQL claim disjoint
    # rows at once and may each make a task.
    settings = make_settings(
        database_url, playbooks_dir, tmp_path / "data", wecom=wecom, dispatch_lanes=1
    )
    rt = build_runtime(settings, clock=clock)
    yield rt
    await rt.aclose()


def customer(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "wecom_userid": f"wm-{n}",
        "name": f"客户{n}",
        "attributes": {"wecom_owner": "zhangsan"},
    }


def event(key: str, type_: str, clock: FakeClock, contact: dict[str, Any], **data: Any) -> Any:
    return {
        "id": key,
        "type": type_,
        "occurred_at": clock.now.isoformat(),
        "contact": contact,
        "data": data,
    }


async def post(client: httpx.AsyncClient, *events: dict[str, Any]) -> None:
    body = events[0] if len(events) == 1 else {"events": list(events)}
    response = await client.post("/v1/events", json=body, headers=auth(INGEST))
    assert response.status_code == 202


async def deliveries(runtime: Runtime, channel: str) -> list[Delivery]:
    """The channel's deliveries, by the customer's wecom_userid."""
    async with runtime.sessions() as session:
        stmt = (
            select(Delivery)
            .join(ContactIdentity, ContactIdentity.contact_id == Delivery.contact_id)
            .where(Delivery.channel == channel, ContactIdentity.kind == "wecom_userid")
            .order_by(ContactIdentity.value, Delivery.id)
        )
        return list(await session.scalars(stmt))


def statuses(rows: list[Delivery]) -> list[tuple[str, str | None]]:
    return [(d.status, d.skip_reason) for d in rows]


def added(clock: FakeClock, *, late: float = 0) -> dict[str, Any]:
    occurred = clock.now.timestamp() - late
    return {
        "id": "add-1",
        "type": "contact.added",
        "occurred_at": clock.now.fromtimestamp(occurred, clock.now.tzinfo).isoformat(),
        "contact": {**customer(1), "name": "小王"},
        "data": {"staff": "zhangsan", "welcome_code": "WELCOMECODE"},
    }


# The welcome: a priority path right after ingest.


async def test_welcome_is_sent_right_after_ingest_without_a_tick(
    client: httpx.AsyncClient,
    runtime: Runtime,
    clock: FakeClock,
    respx_mock: respx.MockRouter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def no_tick(**_: Any) -> int:
        raise AssertionError("the welcome must not wait for a regular tick")

    monkeypatch.setattr(runtime.dispatcher, "tick", no_tick)
    fake.token_route(respx_mock)
    welcome = fake.api(respx_mock, "externalcontact/send_welcome_msg").mock(return_value=fake.ok())

    await post(client, added(clock))  # processed, and its welcome sent, by the processor

    assert fake.body(welcome.calls[0]) == {
        "welcome_code": "WELCOMECODE",
        "text": {"content": "小王您好，欢迎来到某某旗舰店！有任何问题随时找我。"},
    }
    (sent,) = await deliveries(runtime, "wecom_welcome")
    assert (sent.status, sent.sent_at) == ("sent", clock.now)


@pytest.mark.respx(assert_all_called=False)
async def test_a_welcome_21_seconds_late_is_window_expired(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock, respx_mock: respx.MockRouter
) -> None:
    welcome = fake.api(respx_mock, "externalcontact/send_welcome_msg")

    await post(client, added(clock, late=21))
    await runtime.settle()

    (skipped,) = await deliveries(runtime, "wecom_welcome")
    assert statuses([skipped]) == [("skipped", "window_expired")]
    assert "21s old" in str(skipped.last_error)
    assert not welcome.called


# Mass-send tasks.


async def test_a_mass_send_task_batches_awaits_and_reports(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock, respx_mock: respx.MockRouter
) -> None:
    fake.token_route(respx_mock)
    create = fake.api(respx_mock, "externalcontact/add_msg_template").mock(
        return_value=fake.ok(fail_list=[], msgid="msgGCAAA1")
    )
    fake.api(respx_mock, "externalcontact/get_groupmsg_task").mock(
        return_value=fake.ok(task_list=[{"userid": "zhangsan", "status": 2}], next_cursor="")
    )

    def result(*status: int) -> httpx.Response:
        rows = [
            {"external_userid": f"wm-{i}", "userid": "zhangsan", "status": s}
            for i, s in enumerate(status, start=1)
        ]
        return fake.ok(send_list=rows, next_cursor="")

    fake.api(respx_mock, "externalcontact/get_groupmsg_send_result").mock(
        side_effect=[result(1, 2, 0), result(1, 2, 3)]
    )
    # Processed in one batch, whose three sends go out together as it commits: one task.
    await post(client, *(event(f"md-{n}", "member.day", clock, customer(n)) for n in (1, 2, 3)))

    assert create.call_count == 1
    assert sorted(fake.body(create.calls[0])["external_userid"]) == ["wm-1", "wm-2", "wm-3"]
    accepted = await deliveries(runtime, "wecom")
    assert {(d.status, d.vendor_ref, d.sent_at) for d in accepted} == {
        ("awaiting", "msgGCAAA1", None)
    }
    assert await runtime.checker.tick() == 0  # the first check is a minute later

    clock.advance(minutes=1)
    assert await runtime.checker.tick() == 3
    assert statuses(await deliveries(runtime, "wecom")) == [
        ("sent", None),
        ("failed", None),
        ("awaiting", None),
    ]

    clock.advance(minutes=1)
    await runtime.checker.tick()
    final = await deliveries(runtime, "wecom")
    assert statuses(final) == [("sent", None), ("failed", None), ("skipped", "quota_exhausted")]
    assert "因客户不是好友导致发送失败" in str(final[1].last_error)
    async with runtime.sessions() as session:
        outcomes = (
            await session.scalars(
                select(DeliveryAttempt.outcome).where(DeliveryAttempt.delivery_id == final[2].id)
            )
        ).all()
    assert list(outcomes) == ["awaiting", "skipped"]
    run = (await client.get(f"/v1/runs/{final[0].run_id}", headers=auth())).json()
    assert [t["status"] for t in run["trace"] if t["kind"] == "delivery"] == ["awaiting", "sent"]


async def test_an_awaiting_marketing_send_counts_against_the_frequency_cap(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock, respx_mock: respx.MockRouter
) -> None:
    fake.token_route(respx_mock)
    fake.api(respx_mock, "externalcontact/add_msg_template").mock(
        return_value=fake.ok(msgid="msg-promo")
    )
    await post(client, event("promo-1", "promo.start", clock, customer(1)))
    await runtime.dispatcher.tick()

    clock.advance(hours=1)  # the staff has not confirmed the task yet
    await runtime.processor.drain()
    await runtime.dispatcher.tick()

    assert statuses(await deliveries(runtime, "wecom")) == [("awaiting", None)]
    assert statuses(await deliveries(runtime, "mock")) == [("skipped", "frequency_capped")]


async def test_group_tasks_go_to_the_trigger_group_once(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock, respx_mock: respx.MockRouter
) -> None:
    fake.token_route(respx_mock)
    create = fake.api(respx_mock, "externalcontact/add_msg_template").mock(
        return_value=fake.ok(msgid="msg-group")
    )
    fake.api(respx_mock, "externalcontact/get_groupmsg_task").mock(
        return_value=fake.ok(task_list=[{"userid": "zhangsan", "status": 2}])
    )
    fake.api(respx_mock, "externalcontact/get_groupmsg_send_result").mock(
        return_value=fake.ok(send_list=[{"chat_id": "wr-1", "userid": "zhangsan", "status": 1}])
    )
    joins = [event(f"join-{n}", "group.joined", clock, customer(n), chat_id="wr-1") for n in (1, 2)]
    await post(client, *joins)

    await runtime.dispatcher.tick()
    clock.advance(minutes=1)
    await runtime.checker.tick()

    assert fake.body(create.calls[0])["chat_id_list"] == ["wr-1"]
    assert sorted(statuses(await deliveries(runtime, "wecom_group"))) == [
        ("sent", None),
        ("skipped", "duplicate"),
    ]


# 微信客服.


async def test_kf_sends_five_messages_after_the_customers_last(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock, respx_mock: respx.MockRouter
) -> None:
    fake.token_route(respx_mock)
    send = fake.api(respx_mock, "kf/send_msg").mock(return_value=fake.ok())
    await post(
        client,
        event("kf-1", "chat.message", clock, customer(1), text="活动有吗", open_kfid="wk-shop"),
    )

    await runtime.dispatcher.tick()

    assert sorted(statuses(await deliveries(runtime, "wecom_kf"))) == [
        *[("sent", None)] * 5,
        ("skipped", "window_expired"),
    ]
    assert send.call_count == 5
    assert {fake.body(c)["open_kfid"] for c in send.calls} == {"wk-shop"}
    assert {fake.body(c)["touser"] for c in send.calls} == {"wm-1"}


@pytest.mark.respx(assert_all_called=False)
async def test_kf_after_48_hours_is_window_expired(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock, respx_mock: respx.MockRouter
) -> None:
    send = fake.api(respx_mock, "kf/send_msg")
    await post(
        client,
        event("kf-1", "chat.message", clock, customer(1), text="稍后联系", open_kfid="wk-shop"),
    )

    clock.advance(hours=49)
    await runtime.processor.drain()
    await runtime.dispatcher.tick()

    assert statuses(await deliveries(runtime, "wecom_kf")) == [("skipped", "window_expired")]
    assert not send.called


async def test_a_kf_callback_pulls_messages_into_events_and_keeps_the_cursor(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock, respx_mock: respx.MockRouter
) -> None:
    fake.token_route(respx_mock)
    message = {
        "msgid": "from-customer-1",
        "open_kfid": "wkxxxxxxx",
        "external_userid": "wm-7",
        "send_time": int(clock.now.timestamp()),
        "origin": 3,
        "msgtype": "text",
        "text": {"content": "这个多少钱"},
    }
    system = {"msgid": "sys-1", "origin": 4, "msgtype": "event", "event": {}}
    sync = fake.api(respx_mock, "kf/sync_msg").mock(
        side_effect=[
            fake.ok(next_cursor="c-1", has_more=0, msg_list=[message, system]),
            fake.ok(next_cursor="c-2", has_more=0, msg_list=[]),
        ]
    )
    reply = fake.api(respx_mock, "kf/send_msg").mock(return_value=fake.ok())

    for _ in range(2):
        params, body = v.signed_post(v.official(), v.fixture("kf_msg_or_event.xml"))
        response = await client.post("/v1/wecom/callback", params=params, content=body)
        assert response.text == "success"
        await runtime.settle()

    token = "ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR"
    assert [fake.body(c) for c in sync.calls] == [
        {"cursor": "", "token": token, "limit": 1000, "open_kfid": "wkxxxxxxx"},
        {"cursor": "c-1", "token": token, "limit": 1000, "open_kfid": "wkxxxxxxx"},
    ]
    async with runtime.sessions() as session:
        (pulled,) = (await session.scalars(select(Event))).all()
        cursor = await session.get(WeComKfCursor, "wkxxxxxxx")
    assert (pulled.type, pulled.key) == ("chat.message", "kf:from-customer-1")
    assert pulled.data["text"] == "这个多少钱"
    assert pulled.data["open_kfid"] == "wkxxxxxxx"
    assert cursor is not None
    assert cursor.cursor == "c-2"

    await runtime.dispatcher.tick()  # keyword-price answers 多少钱 on wecom_kf

    assert fake.body(reply.calls[0])["touser"] == "wm-7"
    assert fake.body(reply.calls[0])["open_kfid"] == "wkxxxxxxx"


# The staff channel.


async def test_notify_staff_messages_the_owner_through_the_app(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock, respx_mock: respx.MockRouter
) -> None:
    fake.token_route(respx_mock)
    send = fake.api(respx_mock, "message/send").mock(return_value=fake.ok(msgid="m-1"))
    await post(client, event("del-1", "contact.deleted", clock, customer(1), by="customer"))

    await runtime.dispatcher.tick()

    assert fake.body(send.calls[0]) == {
        "touser": "zhangsan",
        "msgtype": "text",
        "agentid": 1000002,
        "text": {"content": "客户 客户1 删除了您"},
    }
    assert statuses(await deliveries(runtime, "staff")) == [("sent", None)]
    assert runtime.describe_routes() == fake.ALL_ROUTES
