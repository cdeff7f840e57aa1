"""Mass-send tasks (add_msg_template): batching by sender and text, fail_list and quota, and the
reports that later turn each awaiting delivery into sent, failed or skipped."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
import respx
from pydantic import SecretStr

from adapters.wecom import WeComClient, WeComGroupTasks, WeComTasks
from smr.channels import (
    OutboundMessage,
    Pending,
    PermanentSendError,
    RetriableSendError,
    SendResult,
    SkippedSend,
)
from tests.adapters import wecom_fake as fake
from tests.helpers import FakeClock

SECRET = SecretStr(fake.SECRET)
TIMEOUT = timedelta(hours=72)


@pytest.fixture
async def client() -> AsyncIterator[WeComClient]:
    c = WeComClient(corp_id=fake.CORP_ID, base_url=fake.BASE, timeout=5)
    yield c
    await c.aclose()


@pytest.fixture(autouse=True)
def gettoken(respx_mock: respx.MockRouter) -> respx.Route:
    return fake.token_route(respx_mock)


@pytest.fixture
def tasks(client: WeComClient, clock: FakeClock) -> WeComTasks:
    return WeComTasks(client, SECRET, clock=clock, timeout=TIMEOUT)


def to(customer: str, *, sender: str = "zhangsan", text: str = "周五会员日") -> OutboundMessage:
    return fake.message(f"dl_{customer}", text=text, wecom_userid=customer, owner_staff=sender)


async def test_same_sender_and_text_make_one_task(
    tasks: WeComTasks, respx_mock: respx.MockRouter
) -> None:
    route = fake.api(respx_mock, "externalcontact/add_msg_template").mock(
        return_value=fake.ok(fail_list=[], msgid="msgGCAAA1")
    )

    results = await tasks.send_batch([to("wm-1"), to("wm-2"), to("wm-3")])

    assert route.call_count == 1
    assert fake.body(route.calls[0]) == {
        "chat_type": "single",
        "external_userid": ["wm-1", "wm-2", "wm-3"],
        "sender": "zhangsan",
        "text": {"content": "周五会员日"},
    }
    assert all(isinstance(r, SendResult) and r.awaiting for r in results)
    assert {r.vendor_message_id for r in results if isinstance(r, SendResult)} == {"msgGCAAA1"}


async def test_each_sender_and_text_gets_its_own_task(
    tasks: WeComTasks, respx_mock: respx.MockRouter
) -> None:
    route = fake.api(respx_mock, "externalcontact/add_msg_template").mock(
        side_effect=[fake.ok(msgid="m-a"), fake.ok(msgid="m-b"), fake.ok(msgid="m-c")]
    )
    batch = [to("wm-1"), to("wm-2", sender="lisi"), to("wm-3", text="另一条"), to("wm-4")]

    await tasks.send_batch(batch)

    sent = sorted((fake.body(c)["sender"], fake.body(c)["external_userid"]) for c in route.calls)
    assert sent == [("lisi", ["wm-2"]), ("zhangsan", ["wm-1", "wm-4"]), ("zhangsan", ["wm-3"])]


async def test_customers_in_fail_list_fail_and_the_rest_await(
    tasks: WeComTasks, respx_mock: respx.MockRouter
) -> None:
    fake.api(respx_mock, "externalcontact/add_msg_template").mock(
        return_value=fake.ok(fail_list=["wm-2"], msgid="m-1")
    )

    first, second = await tasks.send_batch([to("wm-1"), to("wm-2")])

    assert isinstance(first, SendResult)
    assert first.awaiting
    assert "awaiting zhangsan's confirmation" in str(first.response)
    assert isinstance(second, PermanentSendError)
    assert "wm-2 in fail_list" in second.response


@pytest.mark.parametrize(
    ("answer", "outcome", "detail"),
    [
        (fake.err(41048, "no customer to send"), SkippedSend, "quota_exhausted"),
        (fake.err(45009, "api freq out of limit"), RetriableSendError, None),
        (fake.err(40096, "invalid external userid"), PermanentSendError, None),
        (fake.err(48002, "api forbidden"), PermanentSendError, None),
        (httpx.Response(500), RetriableSendError, None),
    ],
)
async def test_a_refused_task_refuses_every_delivery_in_it(
    tasks: WeComTasks,
    respx_mock: respx.MockRouter,
    answer: httpx.Response,
    outcome: type[Exception],
    detail: str | None,
) -> None:
    fake.api(respx_mock, "externalcontact/add_msg_template").mock(return_value=answer)

    results = await tasks.send_batch([to("wm-1"), to("wm-2")])

    assert [type(r) for r in results] == [outcome, outcome]
    if detail is not None:
        assert [r.reason for r in results if isinstance(r, SkippedSend)] == [detail, detail]


async def test_missing_sender_or_customer_id_and_repeats_are_skipped(
    tasks: WeComTasks, respx_mock: respx.MockRouter
) -> None:
    route = fake.api(respx_mock, "externalcontact/add_msg_template").mock(
        return_value=fake.ok(msgid="m-1")
    )
    no_owner = fake.message("dl_x", text="周五会员日", wecom_userid="wm-9")
    no_userid = fake.message("dl_y", text="周五会员日", owner_staff="zhangsan")
    repeat = fake.message("dl_z", text="周五会员日", wecom_userid="wm-1", owner_staff="zhangsan")

    results = await tasks.send_batch([to("wm-1"), no_owner, no_userid, repeat])

    reasons = [r.reason if isinstance(r, SkippedSend) else None for r in results]
    assert reasons == [None, "missing_identity", "missing_identity", "duplicate"]
    assert fake.body(route.calls[0])["external_userid"] == ["wm-1"]


async def test_a_task_takes_at_most_10000_customers_per_call(
    tasks: WeComTasks, respx_mock: respx.MockRouter
) -> None:
    route = fake.api(respx_mock, "externalcontact/add_msg_template").mock(
        return_value=fake.ok(msgid="m-1")
    )

    await tasks.send_batch([to(f"wm-{i}") for i in range(10_001)])

    assert sorted(len(fake.body(c)["external_userid"]) for c in route.calls) == [1, 10_000]


async def test_group_tasks_name_the_trigger_group(
    client: WeComClient, clock: FakeClock, respx_mock: respx.MockRouter
) -> None:
    route = fake.api(respx_mock, "externalcontact/add_msg_template").mock(
        return_value=fake.ok(msgid="m-g")
    )
    groups = WeComGroupTasks(client, SECRET, clock=clock, timeout=TIMEOUT)
    joined = [
        fake.message(
            f"dl_{i}",
            channel="wecom_group",
            text="欢迎入群",
            chat_id="wr-1",
            owner_staff="zhangsan",
            wecom_userid=f"wm-{i}",
        )
        for i in range(2)
    ]

    first, second = await groups.send_batch(joined)

    assert fake.body(route.calls[0]) == {
        "chat_type": "group",
        "chat_id_list": ["wr-1"],
        "sender": "zhangsan",
        "text": {"content": "欢迎入群"},
    }
    assert isinstance(first, SendResult)
    assert first.awaiting
    assert isinstance(second, SkippedSend)
    assert second.reason == "duplicate"


# Reports


def pending(customer: str, clock: FakeClock, *, hours: float = 1, msgid: str = "m-1") -> Pending:
    return Pending(to(customer), msgid, clock.now - timedelta(hours=hours))


def task_list(*staff: tuple[str, int]) -> httpx.Response:
    return fake.ok(task_list=[{"userid": u, "status": s} for u, s in staff], next_cursor="")


async def test_reports_follow_each_customers_status(
    tasks: WeComTasks, clock: FakeClock, respx_mock: respx.MockRouter
) -> None:
    fake.api(respx_mock, "externalcontact/get_groupmsg_task").mock(
        return_value=task_list(("zhangsan", 2))
    )
    results = fake.api(respx_mock, "externalcontact/get_groupmsg_send_result").mock(
        side_effect=[
            fake.ok(
                send_list=[
                    {
                        "external_userid": "wm-1",
                        "userid": "zhangsan",
                        "status": 1,
                        "send_time": 1764000000,
                    },
                    {"external_userid": "wm-2", "userid": "zhangsan", "status": 2},
                ],
                next_cursor="page-2",
            ),
            fake.ok(
                send_list=[
                    {"external_userid": "wm-3", "userid": "zhangsan", "status": 3},
                    {"external_userid": "wm-4", "userid": "zhangsan", "status": 0},
                ],
                next_cursor="",
            ),
        ]
    )
    waiting = [pending(c, clock) for c in ("wm-1", "wm-2", "wm-3", "wm-4", "wm-5")]

    sent, not_friend, over_quota, unsent, unlisted = await tasks.poll_reports(
        waiting, now=clock.now
    )

    assert isinstance(sent, SendResult)
    assert "send_time=1764000000" in str(sent.response)
    assert isinstance(not_friend, PermanentSendError)
    assert "因客户不是好友导致发送失败" in not_friend.response
    assert isinstance(over_quota, SkippedSend)
    assert over_quota.reason == "quota_exhausted"
    assert (unsent, unlisted) == (None, None)
    assert [fake.body(c) for c in results.calls] == [
        {"msgid": "m-1", "userid": "zhangsan", "limit": 1000, "cursor": ""},
        {"msgid": "m-1", "userid": "zhangsan", "limit": 1000, "cursor": "page-2"},
    ]


async def test_a_task_the_staff_has_not_sent_stays_awaiting(
    tasks: WeComTasks, clock: FakeClock, respx_mock: respx.MockRouter
) -> None:
    fake.api(respx_mock, "externalcontact/get_groupmsg_task").mock(
        return_value=task_list(("zhangsan", 0))
    )
    results = fake.api(respx_mock, "externalcontact/get_groupmsg_send_result")

    assert await tasks.poll_reports([pending("wm-1", clock)], now=clock.now) == [None]
    assert not results.called


async def test_a_task_unsent_after_the_timeout_fails_and_is_cancelled(
    tasks: WeComTasks, clock: FakeClock, respx_mock: respx.MockRouter
) -> None:
    fake.api(respx_mock, "externalcontact/get_groupmsg_task").mock(
        return_value=task_list(("zhangsan", 0))
    )
    cancel = fake.api(respx_mock, "externalcontact/cancel_groupmsg_send").mock(
        return_value=fake.ok()
    )

    (report,) = await tasks.poll_reports([pending("wm-1", clock, hours=72)], now=clock.now)

    assert isinstance(report, PermanentSendError)
    assert "did not send it within 72h" in report.response
    assert fake.body(cancel.calls[0]) == {"msgid": "m-1"}


async def test_a_failed_report_call_raises_for_the_whole_poll(
    tasks: WeComTasks, clock: FakeClock, respx_mock: respx.MockRouter
) -> None:
    fake.api(respx_mock, "externalcontact/get_groupmsg_task").mock(
        return_value=fake.err(45009, "api freq out of limit")
    )

    with pytest.raises(RetriableSendError):
        await tasks.poll_reports([pending("wm-1", clock)], now=clock.now)
