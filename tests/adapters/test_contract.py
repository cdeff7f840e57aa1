"""What every channel adapter promises, run against each one (vendors faked with respx).

Adding an adapter adds one ``Case``, not a copy of these tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
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
from tests.adapters import wecom_fake as fake
from tests.adapters.conftest import seed_kf
from tests.helpers import FakeClock

Sessions = async_sessionmaker[AsyncSession]
Build = Callable[[WeComClient, Sessions, FakeClock, bool], ChannelAdapter]


@dataclass(frozen=True)
class Case:
    build: Build
    api: str | None  # the WeCom API a send calls (None: no vendor)
    recipient: dict[str, str]
    seed: Callable[[Sessions, datetime], Awaitable[None]] | None = None
    batches: bool = False  # a BatchSender


async def _kf_window(sessions: Sessions, now: datetime) -> None:
    await seed_kf(sessions, now=now, messages=[now - timedelta(minutes=5)], contact_id="ct_1")


SECRET = SecretStr(fake.SECRET)
CUSTOMER = {"wecom_userid": "wm-1", "owner_staff": "zhangsan"}
CASES = {
    "mock": Case(
        lambda c, s, clock, failing: MockAdapter(
            MockSettings(fail_rate=1.0 if failing else 0.0), sessions=s, clock=clock
        ),
        None,
        CUSTOMER,
        batches=True,
    ),
    "wecom.welcome": Case(
        lambda c, s, clock, failing: WeComWelcome(c, SECRET, clock=clock),
        "externalcontact/send_welcome_msg",
        {**CUSTOMER, "welcome_code": "CODE"},
    ),
    "wecom.kf": Case(
        lambda c, s, clock, failing: WeComKf(c, SECRET, clock=clock, sessions=s),
        "kf/send_msg",
        CUSTOMER,
        _kf_window,
    ),
    "wecom.msg_template": Case(
        lambda c, s, clock, failing: WeComTasks(
            c, SECRET, clock=clock, timeout=timedelta(hours=72)
        ),
        "externalcontact/add_msg_template",
        CUSTOMER,
        batches=True,
    ),
    "wecom.group_msg_template": Case(
        lambda c, s, clock, failing: WeComGroupTasks(
            c, SECRET, clock=clock, timeout=timedelta(hours=72)
        ),
        "externalcontact/add_msg_template",
        {**CUSTOMER, "chat_id": "wr-1"},
        batches=True,
    ),
    "wecom.app": Case(
        lambda c, s, clock, failing: WeComApp(c, SECRET, clock=clock, agent_id=fake.AGENT_ID),
        "message/send",
        CUSTOMER,
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
    return fake.message("dl_contract_0001", text="您好", **recipient)


async def adapter_for(
    case: Case,
    client: WeComClient,
    sessions: Sessions,
    clock: FakeClock,
    respx_mock: respx.MockRouter,
    answer: httpx.Response,
    *,
    failing: bool = False,
) -> ChannelAdapter:
    fake.token_route(respx_mock)
    if case.api is not None:
        fake.api(respx_mock, case.api).mock(return_value=answer)
    if case.seed is not None:
        await case.seed(sessions, clock.now)
    return case.build(client, sessions, clock, failing)


@pytest.mark.respx(assert_all_called=False)
async def test_send_returns_a_send_result(
    case: Case,
    client: WeComClient,
    sessions: Sessions,
    clock: FakeClock,
    respx_mock: respx.MockRouter,
) -> None:
    answer = fake.ok(msgid="msg-1", fail_list=[])
    adapter = await adapter_for(case, client, sessions, clock, respx_mock, answer)

    result = await adapter.send(message(case, clock))

    assert isinstance(result, SendResult)
    assert result.response


@pytest.mark.respx(assert_all_called=False)
@pytest.mark.parametrize(
    "answer",
    [fake.err(40003, "invalid userid"), fake.err(45009, "busy"), httpx.Response(502)],
    ids=["refused", "throttled", "http-502"],
)
async def test_failures_raise_from_the_send_error_tree(
    case: Case,
    client: WeComClient,
    sessions: Sessions,
    clock: FakeClock,
    respx_mock: respx.MockRouter,
    answer: httpx.Response,
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
    adapter = await adapter_for(case, client, sessions, clock, respx_mock, fake.ok(msgid="m"))
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
    adapter = await adapter_for(case, client, sessions, clock, respx_mock, fake.ok(msgid="m"))
    await adapter.send(message(case, clock))  # a token is cached now

    shown = repr(adapter)

    assert fake.SECRET not in shown
    assert fake.TOKEN not in shown
    assert isinstance(adapter.name, str)
    assert adapter.name
    assert isinstance(adapter.idempotent, bool)
    await adapter.aclose()
    await adapter.aclose()
