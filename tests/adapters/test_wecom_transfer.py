"""The wecom_transfer adapter against a fake WeCom: batching, per-customer errcodes, reports,
and the staff channel's per-recipient rate limit buckets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.wecom import WeComClient
from adapters.wecom.transfer import REPORT_TIMEOUT, WeComTransfer
from smr.channels import (
    OutboundMessage,
    Pending,
    PermanentSendError,
    SendRate,
    SendResult,
    SkippedSend,
)
from smr.repositories import Record
from smr.services.ratelimits import _checks
from tests.adapters import wecom_fake as fake

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def adapter(sessions: Sessions) -> AsyncIterator[WeComTransfer]:
    client = WeComClient(corp_id=fake.CORP_ID, base_url=fake.BASE, timeout=5)
    channel = WeComTransfer(client, SecretStr(fake.SECRET), clock=lambda: NOW, sessions=sessions)
    yield channel
    await channel.aclose()


def transfer(
    n: int, *, to: str = "lisi", owner: str = "zhangsan", **params: str
) -> OutboundMessage:
    recipient = (
        {"wecom_userid": f"wm-{n}", "owner_staff": owner} if owner else {"wecom_userid": f"wm-{n}"}
    )
    return OutboundMessage(
        delivery_id=f"dl_{n}",
        channel="wecom_transfer",
        category="service",
        contact_id=f"ct_{n}",
        recipient=recipient,
        text=None,
        params={"to": to, "resigned": "false", **params},
    )


async def test_customers_go_100_to_a_call_and_each_gets_its_errcode(
    adapter: WeComTransfer, respx_mock: respx.MockRouter
) -> None:
    fake.token_route(respx_mock)

    def answer(request: httpx.Request) -> httpx.Response:
        customers = json.loads(request.content)["external_userid"]
        codes = [{"external_userid": c, "errcode": 40129 if c == "wm-7" else 0} for c in customers]
        return fake.ok(customer=codes)

    route = fake.api(respx_mock, "externalcontact/transfer_customer").mock(side_effect=answer)
    messages = [transfer(n) for n in range(150)] + [transfer(3), transfer(200, owner="")]

    answers = await adapter.send_batch(messages)

    assert [len(fake.body(c)["external_userid"]) for c in route.calls] == [100, 50]
    assert all(
        isinstance(a, SendResult) and a.awaiting for i, a in enumerate(answers[:150]) if i != 7
    )
    assert isinstance(answers[7], PermanentSendError)
    assert "40129 当前客户正在转接中" in answers[7].response
    assert isinstance(answers[150], SkippedSend)
    assert answers[150].reason == "duplicate"
    assert isinstance(answers[151], SkippedSend)
    assert answers[151].reason == "missing_identity"
    assert {a.vendor_message_id for a in answers[:7] if isinstance(a, SendResult)} == {"zhangsan"}


async def test_a_whole_call_refusal_is_explained(
    adapter: WeComTransfer, respx_mock: respx.MockRouter
) -> None:
    fake.token_route(respx_mock)
    fake.api(respx_mock, "externalcontact/resigned/transfer_customer").mock(
        return_value=fake.err(40097, "user not resigned")
    )

    with pytest.raises(PermanentSendError) as refused:
        await adapter.send(transfer(1, resigned="true"))

    assert refused.value.response == (
        "externalcontact/resigned/transfer_customer: errcode=40097 errmsg=user not resigned "
        "(该成员尚未离职: the owner staff has not resigned; transfer with resigned: false)"
    )


@pytest.mark.parametrize(
    ("row", "age", "expected"),
    [
        ({"status": 2}, timedelta(hours=100), None),
        ({"status": 4}, timedelta(hours=1), "status=4 接替成员客户达到上限"),
        ({"status": 5}, timedelta(hours=1), "status=5 无接替记录"),
        (None, timedelta(hours=1), None),
        (None, REPORT_TIMEOUT, "no result for the customer in 72h"),
    ],
    ids=["waiting", "full", "no-record", "not-listed", "timed-out"],
)
async def test_transfer_result_statuses(
    adapter: WeComTransfer,
    respx_mock: respx.MockRouter,
    row: dict[str, int] | None,
    age: timedelta,
    expected: str | None,
) -> None:
    fake.token_route(respx_mock)
    listed = [{"external_userid": "wm-1", **row}] if row else []
    fake.api(respx_mock, "externalcontact/transfer_result").mock(
        return_value=fake.ok(customer=listed, next_cursor="")
    )
    pending = Pending(transfer(1), vendor_ref="zhangsan", accepted_at=NOW - age)

    (report,) = await adapter.poll_reports([pending], now=NOW)

    if expected is None:
        assert report is None
    else:
        assert isinstance(report, PermanentSendError)
        assert expected in report.response


@pytest.mark.parametrize(
    ("params", "owner", "counted"),
    [
        ({"to": "owner"}, "zhangsan", ["zhangsan"]),
        ({"touser": "a|b|a"}, "zhangsan", ["a", "b"]),
        ({"totag": "3"}, "", ["tag:3"]),
        ({"to": "owner"}, "", []),
    ],
    ids=["owner", "users", "tag", "no-owner"],
)
def test_the_staff_limit_counts_each_recipient_apart(
    params: dict[str, str], owner: str, counted: list[str]
) -> None:
    delivery = Record(id="dl_1", channel="staff", contact_id="ct_1", params=params)
    rate = SendRate(max=30, per=timedelta(minutes=1), key="staff")
    recipient = {"owner_staff": owner} if owner else {}

    checks = _checks(delivery, recipient, [rate])

    assert [c.of for c in checks] == counted
    assert [c.bucket for c in checks] == [f"staff:staff:{of}" for of in counted]
