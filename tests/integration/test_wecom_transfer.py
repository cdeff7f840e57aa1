"""Staff routing (notify_staff.to) and customer transfer (客户继承) end to end: events →
playbooks → deliveries → WeCom (faked with respx) → transfer_result / transfer_fail, on a real
database; POST /v1/contacts/{id}/transfer and the contact's owner staff."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import select

from smr.models import Contact, ContactIdentity, Delivery, DeliveryAttempt, Event, Run
from smr.runtime import Runtime, build_runtime
from tests.adapters import wecom_fake as fake
from tests.conftest import CORE, make_settings
from tests.helpers import INGEST, FakeClock, auth, contact_of
from tests.unit.inbound import wecom_support as v

PLAYBOOKS = {
    "move.yaml": """
id: move
name: move
mode: parallel
trigger: {event: vip.assigned}
steps:
  - transfer: {to: lisi, message: "您好，我是您的新顾问李四"}
""",
    "move-resigned.yaml": """
id: move-resigned
name: move-resigned
mode: parallel
trigger: {event: staff.left}
steps:
  - transfer: {to: lisi, resigned: true}
""",
    "alert.yaml": """
id: alert
name: alert
mode: parallel
trigger: {event: vip.alert}
steps:
  - notify_staff: {text: "给负责人"}
  - notify_staff: {text: "给经理", to: [wangwu, zhaoliu]}
  - notify_staff: {text: "给标签", to: {tag: 3}}
""",
    "refused.yaml": """
id: refused
name: refused
mode: parallel
trigger: {event: contact.transfer_failed}
steps:
  - notify_staff: {text: "客户拒绝转接：{{ event.data.reason }}", to: [manager]}
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
    # One dispatch lane: customers go in one transfer call only when one batch claims them,
    # and concurrent lanes may each claim one of two due deliveries.
    settings = make_settings(
        database_url,
        playbooks_dir,
        tmp_path / "data",
        wecom=fake.with_callbacks(),
        dispatch_lanes=1,
    )
    rt = build_runtime(settings, clock=clock)
    yield rt
    await rt.aclose()


def customer(n: int, owner: str | None = "zhangsan") -> dict[str, Any]:
    attributes = {"wecom_owner": owner} if owner else {}
    return {"wecom_userid": f"wm-{n}", "name": f"客户{n}", "attributes": attributes}


async def post_event(
    client: httpx.AsyncClient, key: str, type_: str, clock: FakeClock, contact: dict[str, Any]
) -> str:
    body = {"id": key, "type": type_, "occurred_at": clock.now.isoformat(), "contact": contact}
    response = await client.post("/v1/events", json=body, headers=auth(INGEST))
    assert response.status_code == 202
    return await contact_of(client, response.json())


async def rows(runtime: Runtime, channel: str) -> list[Delivery]:
    async with runtime.sessions() as session:
        stmt = select(Delivery).where(Delivery.channel == channel).order_by(Delivery.id)
        return list(await session.scalars(stmt))


async def owner(runtime: Runtime, contact_id: str) -> Any:
    async with runtime.sessions() as session:
        contact = await session.get(Contact, contact_id)
        assert contact is not None
        return contact.attributes.get("wecom_owner")


def transfer_routes(
    mock: respx.MockRouter, *results: httpx.Response
) -> tuple[respx.Route, respx.Route]:
    """transfer_customer accepting every customer; transfer_result answering ``results``."""
    fake.token_route(mock)

    def accept(request: httpx.Request) -> httpx.Response:
        customers = json.loads(request.content)["external_userid"]
        return fake.ok(customer=[{"external_userid": c, "errcode": 0} for c in customers])

    start = fake.api(mock, "externalcontact/transfer_customer").mock(side_effect=accept)
    done = fake.api(mock, "externalcontact/transfer_result").mock(side_effect=list(results))
    return start, done


def result(status: int, *customers: str, takeover_time: int = 1_764_000_000) -> httpx.Response:
    listed = [
        {"external_userid": c, "status": status, "takeover_time": takeover_time} for c in customers
    ]
    return fake.ok(customer=listed, next_cursor="")


# notify_staff.to


async def test_notify_staff_goes_to_the_owner_listed_staff_or_a_tag(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock, respx_mock: respx.MockRouter
) -> None:
    fake.token_route(respx_mock)
    send = fake.api(respx_mock, "message/send").mock(return_value=fake.ok(msgid="m1"))
    await post_event(client, "a-1", "vip.alert", clock, customer(1))

    await runtime.dispatcher.tick()

    bodies = {b["text"]["content"]: b for b in map(fake.body, send.calls)}
    agent = int(fake.AGENT_ID)
    text = {"msgtype": "text", "agentid": agent}
    assert bodies == {
        "给负责人": {"touser": "zhangsan", **text, "text": {"content": "给负责人"}},
        "给经理": {"touser": "wangwu|zhaoliu", **text, "text": {"content": "给经理"}},
        "给标签": {"totag": "3", **text, "text": {"content": "给标签"}},
    }
    assert [d.params for d in await rows(runtime, "staff")] == [
        {"to": "owner"},
        {"touser": "wangwu|zhaoliu"},
        {"totag": "3"},
    ]
    assert {d.status for d in await rows(runtime, "staff")} == {"sent"}


async def test_listed_staff_need_no_owner_and_the_owner_notice_is_skipped_without_one(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock, respx_mock: respx.MockRouter
) -> None:
    fake.token_route(respx_mock)
    answer = fake.ok(msgid="m1", invaliduser="zhaoliu")
    send = fake.api(respx_mock, "message/send").mock(return_value=answer)
    await post_event(client, "a-1", "vip.alert", clock, customer(1, owner=None))

    await runtime.dispatcher.tick()

    owner_notice, listed, tagged = await rows(runtime, "staff")
    assert (owner_notice.status, owner_notice.skip_reason) == ("skipped", "missing_identity")
    assert (listed.status, tagged.status) == ("sent", "sent")
    assert len(send.calls) == 2
    async with runtime.sessions() as session:
        attempt = await session.scalar(
            select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == listed.id)
        )
    assert attempt is not None
    assert attempt.response == "message/send: ok (not reached: zhaoliu)"


# The transfer step.


async def test_a_transfer_awaits_transfer_result_then_the_takeover_owns_the_contact(
    client: httpx.AsyncClient,
    accepting_client: httpx.AsyncClient,
    runtime: Runtime,
    clock: FakeClock,
    respx_mock: respx.MockRouter,
) -> None:
    transfer, results = transfer_routes(
        respx_mock, result(2, "wm-1", "wm-2"), result(1, "wm-1", "wm-2")
    )
    accepted = []
    for n in (1, 2):
        body = {"id": f"v-{n}", "type": "vip.assigned", "contact": customer(n)}
        response = await accepting_client.post("/v1/events", json=body, headers=auth(INGEST))
        assert response.status_code == 202
        accepted.append(response.json())
    await runtime.process_pending()  # one batch, whose sends go out together as it commits
    ids = [await contact_of(client, body) for body in accepted]

    # One call for both customers: same handover, takeover and message.
    assert transfer.call_count == 1
    assert fake.body(transfer.calls[0]) == {
        "handover_userid": "zhangsan",
        "takeover_userid": "lisi",
        "external_userid": ["wm-1", "wm-2"],
        "transfer_success_msg": "您好，我是您的新顾问李四",
    }
    assert {d.status for d in await rows(runtime, "wecom_transfer")} == {"awaiting"}

    clock.advance(minutes=1)
    assert await runtime.checker.tick() == 2  # status 2 等待接替: still awaiting
    assert {d.status for d in await rows(runtime, "wecom_transfer")} == {"awaiting"}
    assert [await owner(runtime, i) for i in ids] == ["zhangsan", "zhangsan"]

    clock.advance(hours=1)
    await runtime.checker.tick()

    assert {d.status for d in await rows(runtime, "wecom_transfer")} == {"sent"}
    assert [await owner(runtime, i) for i in ids] == ["lisi", "lisi"]
    assert fake.body(results.calls[0]) == {
        "handover_userid": "zhangsan",
        "takeover_userid": "lisi",
        "cursor": "",
    }
    detail = (await client.get(f"/v1/contacts/{ids[0]}", headers=auth())).json()
    assert detail["owner_staff"] == "lisi"


async def test_a_refused_transfer_fails_with_the_reason(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock, respx_mock: respx.MockRouter
) -> None:
    transfer_routes(respx_mock, result(3, "wm-1"))
    contact_id = await post_event(client, "v-1", "vip.assigned", clock, customer(1))
    await runtime.dispatcher.tick()

    clock.advance(minutes=1)
    await runtime.checker.tick()

    (row,) = await rows(runtime, "wecom_transfer")
    assert row.status == "failed"
    assert row.last_error is not None
    assert "status=3 客户拒绝" in row.last_error
    assert await owner(runtime, contact_id) == "zhangsan"


async def test_the_90_day_limit_fails_the_transfer_for_good(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock, respx_mock: respx.MockRouter
) -> None:
    fake.token_route(respx_mock)
    refused = fake.ok(customer=[{"external_userid": "wm-1", "errcode": 40128}])
    fake.api(respx_mock, "externalcontact/transfer_customer").mock(return_value=refused)
    await post_event(client, "v-1", "vip.assigned", clock, customer(1))

    await runtime.dispatcher.tick()

    (row,) = await rows(runtime, "wecom_transfer")
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error == (
        "externalcontact/transfer_customer: errcode=40128 客户转接过于频繁: WeCom transfers a "
        "customer at most twice in 90 days"
    )


async def test_a_resigned_owner_goes_through_the_resigned_apis(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock, respx_mock: respx.MockRouter
) -> None:
    fake.token_route(respx_mock)
    accepted = fake.ok(customer=[{"external_userid": "wm-1", "errcode": 0}])
    start = fake.api(respx_mock, "externalcontact/resigned/transfer_customer")
    start.mock(return_value=accepted)
    done = fake.api(respx_mock, "externalcontact/resigned/transfer_result")
    done.mock(return_value=result(1, "wm-1"))
    contact_id = await post_event(client, "s-1", "staff.left", clock, customer(1))

    await runtime.dispatcher.tick()
    clock.advance(minutes=1)
    await runtime.checker.tick()

    assert fake.body(start.calls[0]) == {
        "handover_userid": "zhangsan",
        "takeover_userid": "lisi",
        "external_userid": ["wm-1"],
    }
    assert fake.body(done.calls[0])["handover_userid"] == "zhangsan"
    assert [d.status for d in await rows(runtime, "wecom_transfer")] == ["sent"]
    assert await owner(runtime, contact_id) == "lisi"


# The API.


async def test_the_api_plans_a_transfer_that_the_dispatcher_sends(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock, respx_mock: respx.MockRouter
) -> None:
    fake.token_route(respx_mock)
    accepted = fake.ok(customer=[{"external_userid": "wm-1", "errcode": 0}])
    start = fake.api(respx_mock, "externalcontact/resigned/transfer_customer")
    start.mock(return_value=accepted)
    contact_id = await post_event(client, "c-1", "contact.touched", clock, customer(1))

    response = await client.post(
        f"/v1/contacts/{contact_id}/transfer",
        json={"to": "lisi", "message": "ignored when resigned", "resigned": True},
        headers=auth(),
    )

    assert response.status_code == 202
    answer = response.json()
    assert answer == {
        "delivery_id": answer["delivery_id"],
        "run_id": answer["run_id"],
        "contact_id": contact_id,
        "from_staff": "zhangsan",
        "to": "lisi",
        "resigned": True,
        "status": "scheduled",
    }
    await runtime.dispatcher.tick()
    listed = await client.get(
        "/v1/deliveries",
        params={"contact": contact_id, "channel": "wecom_transfer"},
        headers=auth(),
    )
    (item,) = listed.json()["items"]
    assert (item["id"], item["status"]) == (answer["delivery_id"], "awaiting")
    assert "transfer_success_msg" not in fake.body(start.calls[0])
    async with runtime.sessions() as session:
        run = await session.get(Run, answer["run_id"])
    assert run is not None
    assert (run.playbook_id, run.status) == ("api:transfer", "completed")


@pytest.mark.respx(assert_all_called=False)
async def test_the_api_answers_404_409_and_422(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    no_owner = await post_event(client, "c-1", "contact.touched", clock, customer(1, owner=None))
    phone_only = {"phone": "13800138000", "attributes": {"wecom_owner": "zhangsan"}}
    no_userid = await post_event(client, "c-2", "contact.touched", clock, phone_only)
    owned = await post_event(client, "c-3", "contact.touched", clock, customer(3))

    async def transfer(contact_id: str, body: Any) -> httpx.Response:
        url = f"/v1/contacts/{contact_id}/transfer"
        return await client.post(url, json=body, headers=auth())

    assert (await transfer("ct_nobody", {"to": "lisi"})).status_code == 404
    for contact_id in (no_owner, no_userid):
        conflict = await transfer(contact_id, {"to": "lisi"})
        assert conflict.status_code == 409
        assert conflict.headers["content-type"] == "application/problem+json"
    assert (await transfer(owned, {"to": "zhangsan"})).status_code == 409
    bad = await transfer(owned, {"to": "", "message": "长" * 201, "extra": 1})
    assert bad.status_code == 422
    paths = sorted(e["path"] for e in bad.json()["errors"])
    assert paths == ["extra", "message", "to"]
    assert (await rows(runtime, "wecom_transfer")) == []


# transfer_fail.


TRANSFER_FAIL = """<xml><ToUserName><![CDATA[toUser]]></ToUserName>
<FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1764000000</CreateTime>
<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_contact]]></Event>
<ChangeType><![CDATA[transfer_fail]]></ChangeType>
<FailReason><![CDATA[customer_refused]]></FailReason>
<UserID><![CDATA[lisi]]></UserID><ExternalUserID><![CDATA[wm-1]]></ExternalUserID></xml>"""


async def test_transfer_fail_fails_the_awaiting_transfer_and_notifies_a_playbook(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock, respx_mock: respx.MockRouter
) -> None:
    transfer_routes(respx_mock)
    send = fake.api(respx_mock, "message/send").mock(return_value=fake.ok(msgid="m1"))
    await post_event(client, "v-1", "vip.assigned", clock, customer(1))
    await runtime.dispatcher.tick()

    params, body = v.signed_post(v.official(), TRANSFER_FAIL)
    for _ in range(2):  # WeCom retries: the second is a duplicate
        response = await client.post("/v1/wecom/callback", params=params, content=body)
        assert response.status_code == 200
    await runtime.dispatcher.tick()

    (row,) = await rows(runtime, "wecom_transfer")
    assert row.status == "failed"
    assert row.last_error == (
        "transfer_fail: customer_refused 客户拒绝: the customer refused the transfer"
    )
    async with runtime.sessions() as session:
        events = list(
            await session.scalars(select(Event).where(Event.type == "contact.transfer_failed"))
        )
        identity = await session.get(ContactIdentity, ("wecom_userid", "wm-1"))
    assert [e.data for e in events] == [{"staff": "lisi", "reason": "customer_refused"}]
    assert identity is not None
    assert events[0].contact_id == identity.contact_id
    (notice,) = [fake.body(c) for c in send.calls]
    assert notice["touser"] == "manager"
    assert notice["text"]["content"] == "客户拒绝转接：customer_refused"
