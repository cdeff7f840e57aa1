"""The WeCom client: tokens (cache, expiry, single-flight, refresh on refusal) and how every
vendor answer becomes an outcome."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
import respx
from pydantic import SecretStr

from adapters.wecom.client import WeComClient
from smr.channels import PermanentSendError, RetriableSendError, SendError, SkippedSend
from tests.adapters import wecom_fake as fake

SECRET = SecretStr(fake.SECRET)


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


@pytest.fixture
async def client(ticks: Ticks) -> AsyncIterator[WeComClient]:
    c = WeComClient(corp_id=fake.CORP_ID, base_url=fake.BASE, timeout=5, monotonic=ticks)
    yield c
    await c.aclose()


async def call(client: WeComClient) -> dict[str, object]:
    return await client.call("message/send", SECRET, {"touser": "zhangsan"})


async def test_gettoken_sends_corpid_and_secret_and_the_token_is_cached(
    client: WeComClient, respx_mock: respx.MockRouter
) -> None:
    tokens = fake.token_route(respx_mock)
    sends = fake.api(respx_mock, "message/send").mock(return_value=fake.ok())

    await call(client)
    await call(client)

    assert tokens.call_count == 1
    params = tokens.calls[0].request.url.params
    assert (params["corpid"], params["corpsecret"]) == (fake.CORP_ID, fake.SECRET)
    assert [fake.token_of(c) for c in sends.calls] == [fake.TOKEN, fake.TOKEN]


async def test_the_token_is_refreshed_shortly_before_expires_in(
    client: WeComClient, respx_mock: respx.MockRouter, ticks: Ticks
) -> None:
    tokens = fake.token_route(respx_mock, "first", "second")
    sends = fake.api(respx_mock, "message/send").mock(return_value=fake.ok())

    await call(client)
    ticks.now += 7200 - 301  # 5 minutes and a second before expiry: still fresh
    await call(client)
    ticks.now += 2
    await call(client)

    assert tokens.call_count == 2
    assert [fake.token_of(c) for c in sends.calls] == ["first", "first", "second"]


async def test_each_app_secret_has_its_own_token(
    client: WeComClient, respx_mock: respx.MockRouter
) -> None:
    tokens = fake.token_route(respx_mock, "app-token", "kf-token")
    sends = fake.api(respx_mock, "kf/send_msg").mock(return_value=fake.ok())

    await client.call("kf/send_msg", SECRET, {})
    await client.call("kf/send_msg", SecretStr("kf-secret"), {})
    await client.call("kf/send_msg", SECRET, {})

    assert tokens.call_count == 2
    assert [fake.token_of(c) for c in sends.calls] == ["app-token", "kf-token", "app-token"]


async def test_concurrent_calls_share_one_token_fetch(
    client: WeComClient, respx_mock: respx.MockRouter
) -> None:
    fetching, release = asyncio.Event(), asyncio.Event()

    async def slow_token(request: httpx.Request) -> httpx.Response:
        fetching.set()
        await release.wait()
        return fake.ok(access_token=fake.TOKEN, expires_in=7200)

    tokens = respx_mock.get(f"{fake.BASE}/cgi-bin/gettoken").mock(side_effect=slow_token)
    sends = fake.api(respx_mock, "message/send").mock(return_value=fake.ok())

    calls = [asyncio.create_task(call(client)) for _ in range(20)]
    await fetching.wait()  # one caller is fetching; all the others are waiting for it
    release.set()
    await asyncio.gather(*calls)

    assert (tokens.call_count, sends.call_count) == (1, 20)


@pytest.mark.parametrize("errcode", [40001, 40014, 42001])
async def test_a_refused_token_is_refreshed_and_the_call_replayed_once(
    client: WeComClient, respx_mock: respx.MockRouter, errcode: int
) -> None:
    tokens = fake.token_route(respx_mock, "stale", "fresh")
    sends = fake.api(respx_mock, "message/send").mock(
        side_effect=[fake.err(errcode, "invalid access_token"), fake.ok(msgid="m-1")]
    )

    answer = await call(client)

    assert answer["msgid"] == "m-1"
    assert tokens.call_count == 2
    assert [fake.token_of(c) for c in sends.calls] == ["stale", "fresh"]


async def test_a_token_refused_twice_is_permanent(
    client: WeComClient, respx_mock: respx.MockRouter
) -> None:
    fake.token_route(respx_mock, "one", "two")
    sends = fake.api(respx_mock, "message/send").mock(return_value=fake.err(40014, "bad token"))

    with pytest.raises(PermanentSendError) as raised:
        await call(client)

    assert sends.call_count == 2
    assert raised.value.response == "message/send: errcode=40014 errmsg=bad token"


async def test_concurrent_refusals_refresh_the_token_once(
    client: WeComClient, respx_mock: respx.MockRouter
) -> None:
    tokens = fake.token_route(respx_mock, "stale", "fresh")

    def answer(request: httpx.Request) -> httpx.Response:
        stale = request.url.params["access_token"] == "stale"
        return fake.err(42001, "access_token expired") if stale else fake.ok()

    fake.api(respx_mock, "message/send").mock(side_effect=answer)
    await client.token(SECRET)  # everyone starts with the stale token

    await asyncio.gather(*(call(client) for _ in range(10)))

    assert tokens.call_count == 2


@pytest.mark.parametrize(
    ("answer", "outcome", "detail"),
    [
        (fake.err(40013, "invalid corpid"), PermanentSendError, "errcode=40013"),
        (fake.err(40001, "invalid secret"), PermanentSendError, "errcode=40001"),
        (fake.err(45009, "api freq out of limit"), RetriableSendError, "errcode=45009"),
        (httpx.Response(502), RetriableSendError, "HTTP 502"),
        (fake.ok(expires_in=7200), PermanentSendError, "no access_token"),
    ],
)
async def test_gettoken_failures(
    client: WeComClient,
    respx_mock: respx.MockRouter,
    answer: httpx.Response,
    outcome: type[SendError],
    detail: str,
) -> None:
    respx_mock.get(f"{fake.BASE}/cgi-bin/gettoken").mock(return_value=answer)
    sends = fake.api(respx_mock, "message/send")

    with pytest.raises(outcome) as raised:
        await call(client)

    assert detail in str(raised.value.response)
    assert fake.SECRET not in str(raised.value.response)
    assert not sends.called


#: (vendor answer → outcome, retry_after or skip reason); WeCom answers HTTP 200 with errcode.
ERRCODES = [
    (-1, RetriableSendError, 1.0),
    (45009, RetriableSendError, 60.0),
    (45033, RetriableSendError, 2.0),
    (41096, RetriableSendError, 1.0),
    (41048, SkippedSend, "quota_exhausted"),
    (41050, SkippedSend, "window_expired"),
    (41051, SkippedSend, "duplicate"),
    (95001, SkippedSend, "window_expired"),
    (95002, SkippedSend, "window_expired"),
    (40003, PermanentSendError, None),
    (40096, PermanentSendError, None),
    (48002, PermanentSendError, None),
    (60020, PermanentSendError, None),
    (81013, PermanentSendError, None),
    (84061, PermanentSendError, None),
    (95018, PermanentSendError, None),
]


@pytest.mark.parametrize(("errcode", "outcome", "detail"), ERRCODES)
async def test_errcodes_become_outcomes(
    client: WeComClient,
    respx_mock: respx.MockRouter,
    errcode: int,
    outcome: type[SendError],
    detail: float | str | None,
) -> None:
    fake.token_route(respx_mock)
    sends = fake.api(respx_mock, "message/send").mock(return_value=fake.err(errcode, "why"))

    with pytest.raises(SendError) as raised:
        await call(client)

    error = raised.value
    assert type(error) is outcome
    assert error.response == f"message/send: errcode={errcode} errmsg=why"
    assert sends.call_count == 1  # not a token error: no replay
    if isinstance(error, RetriableSendError):
        assert error.retry_after == detail
    if isinstance(error, SkippedSend):
        assert error.reason == detail


@pytest.mark.parametrize(
    ("answer", "outcome", "detail"),
    [
        (httpx.Response(500), RetriableSendError, "message/send: HTTP 500"),
        (httpx.Response(503), RetriableSendError, "message/send: HTTP 503"),
        (httpx.Response(429), RetriableSendError, "message/send: HTTP 429"),
        (httpx.Response(404), PermanentSendError, "message/send: HTTP 404"),
        (httpx.Response(200, text="<html>"), RetriableSendError, "not JSON"),
        (httpx.Response(200, json=["ok"]), RetriableSendError, "not a JSON object"),
    ],
)
async def test_http_failures(
    client: WeComClient,
    respx_mock: respx.MockRouter,
    answer: httpx.Response,
    outcome: type[SendError],
    detail: str,
) -> None:
    fake.token_route(respx_mock)
    fake.api(respx_mock, "message/send").mock(return_value=answer)

    with pytest.raises(outcome) as raised:
        await call(client)

    assert detail in str(raised.value.response)


async def test_retry_after_header_is_a_backoff_hint(
    client: WeComClient, respx_mock: respx.MockRouter
) -> None:
    fake.token_route(respx_mock)
    busy = httpx.Response(429, headers={"Retry-After": "30"})
    fake.api(respx_mock, "message/send").mock(return_value=busy)

    with pytest.raises(RetriableSendError) as raised:
        await call(client)

    assert raised.value.retry_after == 30


@pytest.mark.parametrize(
    "failure", [httpx.ReadTimeout("timed out"), httpx.ConnectError("connection refused")]
)
async def test_timeouts_and_connection_errors_are_retriable(
    client: WeComClient, respx_mock: respx.MockRouter, failure: Exception
) -> None:
    fake.token_route(respx_mock)
    fake.api(respx_mock, "message/send").mock(side_effect=failure)

    with pytest.raises(RetriableSendError) as raised:
        await call(client)

    assert raised.value.response.startswith("message/send: ")
    assert fake.TOKEN not in raised.value.response


async def test_secrets_and_tokens_stay_out_of_logs_and_reprs(
    client: WeComClient, respx_mock: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.token_route(respx_mock)
    fake.api(respx_mock, "message/send").mock(return_value=fake.ok())

    await call(client)

    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "cgi-bin/gettoken" in logged  # httpx logged the requests, redacted
    assert "corpsecret=***" in logged
    assert fake.SECRET not in logged
    assert fake.TOKEN not in logged
    assert fake.SECRET not in repr(client)


async def test_aclose_twice_is_harmless(ticks: Ticks) -> None:
    c = WeComClient(corp_id=fake.CORP_ID, base_url=fake.BASE, timeout=5, monotonic=ticks)

    await c.aclose()
    await c.aclose()
