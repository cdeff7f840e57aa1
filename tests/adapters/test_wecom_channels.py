"""The one-message-per-call WeCom channels, as tables of (vendor answer → outcome): the welcome
message (20 s, single use), 微信客服 (48 h, 5 messages) and the staff notice (message/send)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
import respx
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.wecom import WeComApp, WeComClient, WeComKf, WeComWelcome
from smr.channels import (
    OutboundMessage,
    PermanentSendError,
    RetriableSendError,
    SendError,
    SkippedSend,
)
from tests.adapters import wecom_fake as fake
from tests.adapters.conftest import seed_kf
from tests.helpers import FakeClock

SECRET = SecretStr(fake.SECRET)


@pytest.fixture
async def client() -> AsyncIterator[WeComClient]:
    c = WeComClient(corp_id=fake.CORP_ID, base_url=fake.BASE, timeout=5)
    yield c
    await c.aclose()


@pytest.fixture(autouse=True)
def gettoken(respx_mock: respx.MockRouter) -> respx.Route:
    return fake.token_route(respx_mock).mock(return_value=fake.ok(access_token=fake.TOKEN))


# send_welcome_msg


def welcome(
    clock: FakeClock, *, age: float = 3, code: str | None = "WELCOMECODE"
) -> OutboundMessage:
    issued = (clock.now - timedelta(seconds=age)).isoformat()
    recipient = {"wecom_userid": "wm-1"}
    if code:
        recipient |= {"welcome_code": code, "welcome_code_at": issued}
    return fake.message(channel="wecom_welcome", text="欢迎光临", **recipient)


async def test_welcome_sends_the_code_and_text(
    client: WeComClient, clock: FakeClock, respx_mock: respx.MockRouter
) -> None:
    route = fake.api(respx_mock, "externalcontact/send_welcome_msg").mock(return_value=fake.ok())
    adapter = WeComWelcome(client, SECRET, clock=clock)

    result = await adapter.send(welcome(clock))

    assert result.response == "send_welcome_msg: ok"
    assert fake.body(route.calls[0]) == {
        "welcome_code": "WELCOMECODE",
        "text": {"content": "欢迎光临"},
    }
    assert fake.token_of(route.calls[0]) == fake.TOKEN


@pytest.mark.parametrize(
    ("answer", "outcome", "detail"),
    [
        (fake.err(41051, "externaluser has started chatting"), SkippedSend, "duplicate"),
        (fake.err(41050, "invalid welcome code"), SkippedSend, "window_expired"),
        (fake.err(41096, "welcome msg is being distributed"), RetriableSendError, None),
        (fake.err(41049, "missing welcome code"), PermanentSendError, None),
        (httpx.Response(503), RetriableSendError, None),
    ],
)
async def test_welcome_answers(
    client: WeComClient,
    clock: FakeClock,
    respx_mock: respx.MockRouter,
    answer: httpx.Response,
    outcome: type[SendError],
    detail: str | None,
) -> None:
    fake.api(respx_mock, "externalcontact/send_welcome_msg").mock(return_value=answer)
    adapter = WeComWelcome(client, SECRET, clock=clock)

    with pytest.raises(outcome) as raised:
        await adapter.send(welcome(clock))

    if detail is not None:
        assert isinstance(raised.value, SkippedSend)
        assert raised.value.reason == detail


@pytest.mark.parametrize(("age", "expired"), [(20, False), (21, True), (3600, True)])
async def test_welcome_code_is_good_for_20_seconds(
    client: WeComClient, clock: FakeClock, respx_mock: respx.MockRouter, age: float, expired: bool
) -> None:
    route = fake.api(respx_mock, "externalcontact/send_welcome_msg").mock(return_value=fake.ok())
    adapter = WeComWelcome(client, SECRET, clock=clock)

    if expired:
        with pytest.raises(SkippedSend) as raised:
            await adapter.send(welcome(clock, age=age))
        assert raised.value.reason == "window_expired"
        assert f"{age:.0f}s old" in raised.value.response
    else:
        await adapter.send(welcome(clock, age=age))
    assert route.called is not expired


async def test_welcome_without_a_code_is_missing_identity(
    client: WeComClient, clock: FakeClock, respx_mock: respx.MockRouter
) -> None:
    route = fake.api(respx_mock, "externalcontact/send_welcome_msg")
    adapter = WeComWelcome(client, SECRET, clock=clock)

    with pytest.raises(SkippedSend) as raised:
        await adapter.send(welcome(clock, code=None))

    assert raised.value.reason == "missing_identity"
    assert not route.called


# kf/send_msg


@pytest.fixture
def kf(
    client: WeComClient, clock: FakeClock, sessions: async_sessionmaker[AsyncSession]
) -> WeComKf:
    return WeComKf(client, SECRET, clock=clock, sessions=sessions)


def kf_message(delivery_id: str = "dl_kf_9999", **recipient: str) -> OutboundMessage:
    return fake.message(
        delivery_id, channel="wecom_kf", text="价格在这里", wecom_userid="wm-1", **recipient
    )


async def test_kf_sends_with_our_delivery_id_as_msgid(
    kf: WeComKf,
    clock: FakeClock,
    sessions: async_sessionmaker[AsyncSession],
    respx_mock: respx.MockRouter,
) -> None:
    await seed_kf(sessions, now=clock.now, messages=[clock.now - timedelta(hours=1)])
    route = fake.api(respx_mock, "kf/send_msg").mock(return_value=fake.ok(msgid="dl_kf_9999"))

    result = await kf.send(kf_message())

    assert fake.body(route.calls[0]) == {
        "touser": "wm-1",
        "open_kfid": "wk-shop",  # from the customer's last kf message
        "msgid": "dl_kf_9999",
        "msgtype": "text",
        "text": {"content": "价格在这里"},
    }
    assert result.vendor_message_id == "dl_kf_9999"
    assert kf.capabilities.idempotent


@pytest.mark.parametrize(
    ("sent_before", "allowed"), [(0, True), (4, True), (5, False)], ids=["1st", "5th", "6th"]
)
async def test_kf_allows_five_messages_after_the_customers_last(
    kf: WeComKf,
    clock: FakeClock,
    sessions: async_sessionmaker[AsyncSession],
    respx_mock: respx.MockRouter,
    sent_before: int,
    allowed: bool,
) -> None:
    wrote = clock.now - timedelta(hours=10)
    sent = [wrote + timedelta(minutes=i + 1) for i in range(sent_before)]
    await seed_kf(sessions, now=clock.now, messages=[wrote], sent=sent)
    route = fake.api(respx_mock, "kf/send_msg").mock(return_value=fake.ok())

    if allowed:
        await kf.send(kf_message())
    else:
        with pytest.raises(SkippedSend) as raised:
            await kf.send(kf_message())
        assert raised.value.reason == "window_expired"
        assert "5 messages sent" in raised.value.response
    assert route.called is allowed


async def test_kf_window_reopens_when_the_customer_writes_again(
    kf: WeComKf,
    clock: FakeClock,
    sessions: async_sessionmaker[AsyncSession],
    respx_mock: respx.MockRouter,
) -> None:
    first = clock.now - timedelta(hours=10)
    sent = [first + timedelta(minutes=i + 1) for i in range(5)]
    await seed_kf(sessions, now=clock.now, messages=[first, clock.now], sent=sent)
    route = fake.api(respx_mock, "kf/send_msg").mock(return_value=fake.ok())

    await kf.send(kf_message())

    assert route.called


@pytest.mark.parametrize("hours", [48.01, 72])
async def test_kf_after_48_hours_is_window_expired(
    kf: WeComKf,
    clock: FakeClock,
    sessions: async_sessionmaker[AsyncSession],
    respx_mock: respx.MockRouter,
    hours: float,
) -> None:
    await seed_kf(sessions, now=clock.now, messages=[clock.now - timedelta(hours=hours)])
    route = fake.api(respx_mock, "kf/send_msg")

    with pytest.raises(SkippedSend) as raised:
        await kf.send(kf_message())

    assert raised.value.reason == "window_expired"
    assert not route.called


async def test_kf_to_another_account_than_the_customer_wrote_to_is_window_expired(
    kf: WeComKf,
    clock: FakeClock,
    sessions: async_sessionmaker[AsyncSession],
    respx_mock: respx.MockRouter,
) -> None:
    await seed_kf(sessions, now=clock.now, messages=[clock.now - timedelta(hours=1)])
    route = fake.api(respx_mock, "kf/send_msg")

    with pytest.raises(SkippedSend) as raised:
        await kf.send(kf_message(open_kfid="wk-other"))

    assert raised.value.reason == "window_expired"
    assert not route.called


@pytest.mark.parametrize(
    ("answer", "outcome", "detail"),
    [
        (fake.err(95001, "send msg count limit"), SkippedSend, "window_expired"),
        (fake.err(95002, "send msg time limit"), SkippedSend, "window_expired"),
        (fake.err(95000, "invalid open_kfid"), PermanentSendError, None),
        (fake.err(95018, "send msg session status invalid"), PermanentSendError, None),
        (fake.err(45033, "api concurrent out of limit"), RetriableSendError, None),
    ],
)
async def test_kf_answers(
    kf: WeComKf,
    clock: FakeClock,
    sessions: async_sessionmaker[AsyncSession],
    respx_mock: respx.MockRouter,
    answer: httpx.Response,
    outcome: type[SendError],
    detail: str | None,
) -> None:
    await seed_kf(sessions, now=clock.now, messages=[clock.now - timedelta(minutes=5)])
    fake.api(respx_mock, "kf/send_msg").mock(return_value=answer)

    with pytest.raises(outcome) as raised:
        await kf.send(kf_message())

    if detail is not None:
        assert isinstance(raised.value, SkippedSend)
        assert raised.value.reason == detail


# message/send (the staff channel)


async def test_staff_notice_goes_to_the_owner_staff_as_app_text(
    client: WeComClient, clock: FakeClock, respx_mock: respx.MockRouter
) -> None:
    route = fake.api(respx_mock, "message/send").mock(return_value=fake.ok(msgid="m-77"))
    adapter = WeComApp(client, SECRET, clock=clock, agent_id=fake.AGENT_ID)

    result = await adapter.send(
        fake.message(channel="staff", text="客户删除了您", owner_staff="zhangsan")
    )

    assert fake.body(route.calls[0]) == {
        "touser": "zhangsan",
        "msgtype": "text",
        "agentid": 1000002,
        "text": {"content": "客户删除了您"},
    }
    assert result.vendor_message_id == "m-77"


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (fake.ok(invaliduser="zhangsan"), PermanentSendError),
        (fake.ok(unlicenseduser="zhangsan"), PermanentSendError),
        (fake.err(81013, "user & party & tag all invalid"), PermanentSendError),
        (fake.err(-1, "system busy"), RetriableSendError),
    ],
)
async def test_staff_notice_answers(
    client: WeComClient,
    clock: FakeClock,
    respx_mock: respx.MockRouter,
    answer: httpx.Response,
    outcome: type[SendError],
) -> None:
    fake.api(respx_mock, "message/send").mock(return_value=answer)
    adapter = WeComApp(client, SECRET, clock=clock, agent_id=fake.AGENT_ID)

    with pytest.raises(outcome):
        await adapter.send(fake.message(channel="staff", text="跟进", owner_staff="zhangsan"))


async def test_staff_notice_without_an_owner_is_missing_identity(
    client: WeComClient, clock: FakeClock, respx_mock: respx.MockRouter
) -> None:
    route = fake.api(respx_mock, "message/send")
    adapter = WeComApp(client, SECRET, clock=clock, agent_id=fake.AGENT_ID)

    with pytest.raises(SkippedSend) as raised:
        await adapter.send(fake.message(channel="staff", text="跟进"))

    assert raised.value.reason == "missing_identity"
    assert not route.called


async def test_text_over_the_endpoint_limit_is_permanent(
    client: WeComClient, clock: FakeClock, respx_mock: respx.MockRouter
) -> None:
    route = fake.api(respx_mock, "message/send")
    adapter = WeComApp(client, SECRET, clock=clock, agent_id=fake.AGENT_ID)

    with pytest.raises(PermanentSendError) as raised:
        await adapter.send(fake.message(channel="staff", text="长" * 683, owner_staff="zhangsan"))

    assert "2049 bytes" in raised.value.response
    assert not route.called
