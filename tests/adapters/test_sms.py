"""What the sms channel does the same with either provider (checks before any vendor call,
transport failures, repr), and how the registry routes ``sms``. Each provider's requests and
answers: test_sms_aliyun, test_sms_tencent."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import pytest
import respx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters import build_routes
from adapters.sms import AliyunSms, SmsChannel, TencentSms, build_sms_routes
from smr.channels import (
    PermanentSendError,
    RetriableSendError,
    SkippedSend,
)
from smr.config import Settings, SmsSettings
from tests.adapters import sms_fake as fake
from tests.helpers import FakeClock

Route = Callable[[respx.MockRouter], respx.Route]


@dataclass(frozen=True)
class Provider:
    make: Callable[[], SmsChannel]
    route: Route


PROVIDERS = {
    "aliyun": Provider(fake.aliyun, fake.aliyun_route),
    "tencent": Provider(fake.tencent, fake.tencent_route),
}


@pytest.fixture(params=list(PROVIDERS))
def provider(request: pytest.FixtureRequest) -> Provider:
    return PROVIDERS[request.param]


async def test_no_phone_is_skipped_without_calling_the_vendor(
    provider: Provider, respx_mock: respx.MockRouter
) -> None:
    route = provider.route(respx_mock)
    adapter = provider.make()

    with pytest.raises(SkippedSend) as raised:
        await adapter.send(fake.message(phone=None))

    assert raised.value.reason == "missing_identity"
    assert "phone" in raised.value.response
    assert not route.called
    await adapter.aclose()


@pytest.mark.parametrize(
    ("phone", "template", "match"),
    [("not-a-phone", "SMS_123", "not a phone number"), (fake.PHONE, None, "no template")],
    ids=["bad-phone", "no-template"],
)
async def test_a_message_the_vendor_cannot_take_fails_without_calling_it(
    provider: Provider,
    respx_mock: respx.MockRouter,
    phone: str,
    template: str | None,
    match: str,
) -> None:
    route = provider.route(respx_mock)
    adapter = provider.make()

    with pytest.raises(PermanentSendError, match=match):
        await adapter.send(fake.message(phone=phone, template=template))

    assert not route.called
    await adapter.aclose()


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectTimeout("connect timed out"),
        httpx.ReadTimeout("read timed out"),
        httpx.ConnectError("connection refused"),
    ],
    ids=["connect-timeout", "read-timeout", "connect-error"],
)
async def test_timeouts_and_transport_errors_are_retriable(
    provider: Provider, respx_mock: respx.MockRouter, failure: Exception
) -> None:
    provider.route(respx_mock).mock(side_effect=failure)
    adapter = provider.make()

    with pytest.raises(RetriableSendError) as raised:
        await adapter.send(fake.message())

    assert raised.value.response.startswith(adapter.name)
    await adapter.aclose()


async def test_repr_shows_no_secret_and_the_channel_is_not_idempotent(
    provider: Provider,
) -> None:
    adapter = provider.make()

    shown = repr(adapter)

    assert fake.SECRET not in shown
    assert fake.KEY_ID not in shown
    assert type(adapter).__name__ in shown
    assert adapter.capabilities.idempotent is False
    assert adapter.name.startswith("sms.")
    await adapter.aclose()
    await adapter.aclose()


@pytest.mark.parametrize(
    ("provider_name", "missing"),
    [("aliyun", "SMR_SMS__SIGN_NAME"), ("tencent", "SMR_SMS__SDK_APP_ID")],
)
def test_an_adapter_without_its_settings_says_which(provider_name: str, missing: str) -> None:
    settings = fake.settings(provider_name, sign_name=None, sdk_app_id=None)
    adapter = {"aliyun": AliyunSms, "tencent": TencentSms}[provider_name]

    with pytest.raises(ValueError, match=missing):
        adapter(settings)


# --- Routes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (fake.settings("aliyun"), "sms.aliyun"),
        (fake.settings("tencent"), "sms.tencent"),
        (SmsSettings(), None),
        (fake.settings("aliyun", access_key_secret=None), None),
        (fake.settings("aliyun", sign_name=None), None),
        (fake.settings("tencent", sdk_app_id=None), None),
    ],
    ids=["aliyun", "tencent", "no-provider", "no-secret", "no-sign", "tencent-no-app"],
)
async def test_build_sms_routes_needs_a_provider_and_all_it_takes(
    settings: SmsSettings, expected: str | None
) -> None:
    routes = build_sms_routes(settings)

    assert {c: a.name for c, a in routes.items()} == ({"sms": expected} if expected else {})
    for adapter in routes.values():
        await adapter.aclose()


async def test_build_sms_routes_leaves_a_skipped_channel_alone() -> None:
    assert build_sms_routes(fake.settings("aliyun"), skip={"sms": "mock"}) == {}


@pytest.fixture
async def routes_of(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> AsyncIterator[Callable[[Settings], dict[str, str]]]:
    built = []

    def build(settings: Settings) -> dict[str, str]:
        routes = build_routes(settings, sessions=sessions, clock=clock)
        built.append(routes)
        return {channel: adapter.name for channel, adapter in routes.items()}

    yield build
    for routes in built:
        for adapter in {id(a): a for a in routes.values()}.values():
            await adapter.aclose()


async def test_a_configured_provider_serves_the_sms_channel(
    routes_of: Callable[[Settings], dict[str, str]],
) -> None:
    routes = routes_of(Settings(sms=fake.settings("tencent")))

    assert routes["sms"] == "sms.tencent"
    assert {n for c, n in routes.items() if c != "sms"} == {"mock"}


async def test_channel_routes_can_keep_sms_on_the_mock(
    routes_of: Callable[[Settings], dict[str, str]],
) -> None:
    routes = routes_of(Settings(sms=fake.settings("aliyun"), channel_routes={"sms": "mock"}))

    assert routes["sms"] == "mock"
