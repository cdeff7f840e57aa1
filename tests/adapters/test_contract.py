"""What every channel adapter promises, run against each one (vendors faked with respx).

Adding an adapter adds one ``Case``, not a copy of these tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import httpx
import pytest
import respx
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.mock import MockAdapter
from adapters.wecom import (
    WeComApp,
    WeComClient,
    WeComGroupTasks,
    WeComKf,
    WeComTasks,
    WeComWelcome,
)
from smr.channels import BatchSender, ChannelAdapter, OutboundMessage, SendError, SendResult
from smr.config import MockSettings
from tests.adapters import sms_fake
from tests.adapters import wecom_fake as fake
from tests.adapters.conftest import seed_kf
from tests.helpers import FakeClock

Sessions = async_sessionmaker[AsyncSession]


@dataclass(frozen=True)
class Kit:
    """What a case builds its adapter from."""

    client: WeComClient
    sessions: Sessions
    clock: FakeClock
    failing: bool  # the mock: fail every send


@dataclass(frozen=True)
class Vendor:
    """A fake vendor: the route a send calls, its answers by kind ("ok", "refused",
    "throttled", "http-502"), and the secrets an adapter must never show."""

    route: Callable[[respx.MockRouter], respx.Route]
    answers: Mapping[str, Callable[[], httpx.Response]]
    secrets: tuple[str, ...]


@dataclass(frozen=True)
class Case:
    build: Callable[[Kit], ChannelAdapter]
    vendor: Vendor | None  # None: no vendor (the mock)
    recipient: dict[str, str]
    seed: Callable[[Sessions, datetime], Awaitable[None]] | None = None
    batches: bool = False  # a BatchSender
    template: str | None = None  # the vendor template a send names (SMS)


WECOM_ANSWERS: dict[str, Callable[[], httpx.Response]] = {
    "ok": lambda: fake.ok(msgid="msg-1", fail_list=[]),
    "refused": lambda: fake.err(40003, "invalid userid"),
    "throttled": lambda: fake.err(45009, "busy"),
    "http-502": lambda: httpx.Response(502),
}


def wecom(api: str) -> Vendor:
    """WeCom, whose ``api`` a send calls with a token from gettoken."""

    def route(mock: respx.MockRouter) -> respx.Route:
        fake.token_route(mock)
        return fake.api(mock, api)

    return Vendor(route, WECOM_ANSWERS, (fake.SECRET, fake.TOKEN))


ALIYUN = Vendor(
    sms_fake.aliyun_route,
    {
        "ok": sms_fake.aliyun_ok,
        "refused": lambda: sms_fake.aliyun_err("isv.MOBILE_NUMBER_ILLEGAL"),
        "throttled": lambda: sms_fake.aliyun_err("Throttling.User", status=400),
        "http-502": lambda: httpx.Response(502),
    },
    (sms_fake.SECRET,),
)
TENCENT = Vendor(
    sms_fake.tencent_route,
    {
        "ok": sms_fake.tencent_status,
        "refused": lambda: sms_fake.tencent_status("InvalidParameterValue.IncorrectPhoneNumber"),
        "throttled": lambda: sms_fake.tencent_err("RequestLimitExceeded"),
        "http-502": lambda: httpx.Response(502),
    },
    (sms_fake.SECRET,),
)


async def _kf_window(sessions: Sessions, now: datetime) -> None:
    await seed_kf(sessions, now=now, messages=[now - timedelta(minutes=5)], contact_id="ct_1")


SECRET = SecretStr(fake.SECRET)
CUSTOMER = {"wecom_userid": "wm-1", "owner_staff": "zhangsan"}
CASES = {
    "mock": Case(
        lambda k: MockAdapter(
            MockSettings(fail_rate=1.0 if k.failing else 0.0), sessions=k.sessions, clock=k.clock
        ),
        None,
        CUSTOMER,
        batches=True,
    ),
    "wecom.welcome": Case(
        lambda k: WeComWelcome(k.client, SECRET, clock=k.clock),
        wecom("externalcontact/send_welcome_msg"),
        {**CUSTOMER, "welcome_code": "CODE"},
    ),
    "wecom.kf": Case(
        lambda k: WeComKf(k.client, SECRET, clock=k.clock, sessions=k.sessions),
        wecom("kf/send_msg"),
        CUSTOMER,
        _kf_window,
    ),
    "wecom.msg_template": Case(
        lambda k: WeComTasks(k.client, SECRET, clock=k.clock, timeout=timedelta(hours=72)),
        wecom("externalcontact/add_msg_template"),
        CUSTOMER,
        batches=True,
    ),
    "wecom.group_msg_template": Case(
        lambda k: WeComGroupTasks(k.client, SECRET, clock=k.clock, timeout=timedelta(hours=72)),
        wecom("externalcontact/add_msg_template"),
        {**CUSTOMER, "chat_id": "wr-1"},
        batches=True,
    ),
    "wecom.app": Case(
        lambda k: WeComApp(k.client, SECRET, clock=k.clock, agent_id=fake.AGENT_ID),
        wecom("message/send"),
        CUSTOMER,
    ),
    "sms.aliyun": Case(
        lambda k: sms_fake.aliyun(clock=k.clock),
        ALIYUN,
        {"phone": sms_fake.PHONE},
        template="SMS_123",
    ),
    "sms.tencent": Case(
        lambda k: sms_fake.tencent(clock=k.clock),
        TENCENT,
        {"phone": sms_fake.PHONE},
        template="1234",
    ),
}


@pytest.fixture(params=list(CASES))
def case(request: pytest.FixtureRequest) -> Case:
    return CASES[request.param]


@pytest.fixture(params=[name for name, c in CASES.items() if c.batches])
def batch_case(request: pytest.FixtureRequest) -> Case:
    return CASES[request.param]


@pytest.fixture
async def client() -> AsyncIterator[WeComClient]:
    c = WeComClient(corp_id=fake.CORP_ID, base_url=fake.BASE, timeout=5)
    yield c
    await c.aclose()


def message(case: Case, clock: FakeClock) -> OutboundMessage:
    recipient = dict(case.recipient)
    if "welcome_code" in recipient:
        recipient["welcome_code_at"] = clock.now.isoformat()
    sent = fake.message("dl_contract_0001", text="您好", **recipient)
    if case.template is None:
        return sent
    return replace(sent, text=None, template_code=case.template, params={"1": "小王"})


async def adapter_for(
    case: Case,
    client: WeComClient,
    sessions: Sessions,
    clock: FakeClock,
    respx_mock: respx.MockRouter,
    answer: str,
    *,
    failing: bool = False,
) -> ChannelAdapter:
    if case.vendor is not None:
        case.vendor.route(respx_mock).mock(return_value=case.vendor.answers[answer]())
    if case.seed is not None:
        await case.seed(sessions, clock.now)
    return case.build(Kit(client, sessions, clock, failing))


@pytest.mark.respx(assert_all_called=False)
async def test_send_returns_a_send_result(
    case: Case,
    client: WeComClient,
    sessions: Sessions,
    clock: FakeClock,
    respx_mock: respx.MockRouter,
) -> None:
    adapter = await adapter_for(case, client, sessions, clock, respx_mock, "ok")

    result = await adapter.send(message(case, clock))

    assert isinstance(result, SendResult)
    assert result.response


@pytest.mark.respx(assert_all_called=False)
@pytest.mark.parametrize("answer", ["refused", "throttled", "http-502"])
async def test_failures_raise_from_the_send_error_tree(
    case: Case,
    client: WeComClient,
    sessions: Sessions,
    clock: FakeClock,
    respx_mock: respx.MockRouter,
    answer: str,
) -> None:
    adapter = await adapter_for(case, client, sessions, clock, respx_mock, answer, failing=True)

    with pytest.raises(SendError) as raised:
        await adapter.send(message(case, clock))

    assert raised.value.response


@pytest.mark.respx(assert_all_called=False)
async def test_batches_answer_each_message_in_order(
    batch_case: Case,
    client: WeComClient,
    sessions: Sessions,
    clock: FakeClock,
    respx_mock: respx.MockRouter,
) -> None:
    case = batch_case
    adapter = await adapter_for(case, client, sessions, clock, respx_mock, "ok")
    sender: BatchSender = adapter  # type: ignore[assignment]
    first = message(case, clock)
    second = fake.message("dl_contract_0002", text="您好", **{**case.recipient, "chat_id": "wr-2"})

    answers = await sender.send_batch([first, second])

    assert len(answers) == 2
    assert all(isinstance(a, SendResult | SendError) for a in answers)


@pytest.mark.respx(assert_all_called=False)
async def test_repr_shows_no_secret_and_aclose_is_idempotent(
    case: Case,
    client: WeComClient,
    sessions: Sessions,
    clock: FakeClock,
    respx_mock: respx.MockRouter,
) -> None:
    adapter = await adapter_for(case, client, sessions, clock, respx_mock, "ok")
    await adapter.send(message(case, clock))  # a token is cached now

    shown = repr(adapter)

    for secret in case.vendor.secrets if case.vendor else ():
        assert secret not in shown
    assert isinstance(adapter.name, str)
    assert adapter.name
    assert isinstance(adapter.capabilities.idempotent, bool)
    await adapter.aclose()
    await adapter.aclose()
