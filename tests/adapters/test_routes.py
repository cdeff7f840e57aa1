"""The registry: each channel goes to its vendor when that vendor is configured, else to the
mock, so the service runs without credentials."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters import build_routes
from smr.channels import ChannelAdapter
from smr.config import Settings, WeComSettings
from tests.adapters import wecom_fake as fake
from tests.helpers import FakeClock

Build = Callable[..., dict[str, str]]


@pytest.fixture
async def routes_of(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> AsyncIterator[Build]:
    built: list[dict[str, ChannelAdapter]] = []

    def build(**settings: Any) -> dict[str, str]:
        routes = build_routes(Settings(**settings), sessions=sessions, clock=clock)
        built.append(routes)
        return {channel: adapter.name for channel, adapter in routes.items()}

    yield build
    for routes in built:
        for adapter in {id(a): a for a in routes.values()}.values():
            await adapter.aclose()


ALL_WECOM = fake.ALL_ROUTES


async def test_without_credentials_every_channel_is_the_mock(routes_of: Build) -> None:
    assert set(routes_of().values()) == {"mock"}


async def test_a_configured_corp_serves_every_wecom_channel(routes_of: Build) -> None:
    assert routes_of(wecom=fake.settings()) == ALL_WECOM


@pytest.mark.parametrize(
    ("wecom", "expected"),
    [
        (WeComSettings(secret=SecretStr("s")), {}),  # no corp id
        (  # no agent id: no app messages
            WeComSettings(corp_id="ww", secret=SecretStr("s")),
            {c: n for c, n in ALL_WECOM.items() if n.startswith("wecom.") and c != "staff"},
        ),
        (
            WeComSettings(corp_id="ww", kf_secret=SecretStr("k")),
            {"wecom_kf": "wecom.kf"},
        ),
        (
            WeComSettings(corp_id="ww", contact_secret=SecretStr("c")),
            {
                "moment": "wecom.moment",
                "wecom": "wecom.msg_template",
                "wecom_group": "wecom.group_msg_template",
                "wecom_tag": "wecom.mark_tag",
                "wecom_transfer": "wecom.transfer",
                "wecom_welcome": "wecom.welcome",
            },
        ),
    ],
    ids=["no-corp", "no-agent", "kf-only", "contact-only"],
)
async def test_each_channel_needs_the_secret_its_api_takes(
    routes_of: Build, wecom: WeComSettings, expected: dict[str, str]
) -> None:
    routes = routes_of(wecom=wecom)

    assert {c: n for c, n in routes.items() if n != "mock"} == expected


async def test_channel_routes_can_keep_a_configured_channel_on_the_mock(routes_of: Build) -> None:
    routes = routes_of(wecom=fake.settings(), channel_routes={"wecom": "mock"})

    assert routes == {**ALL_WECOM, "wecom": "mock"}


async def test_an_unknown_channel_route_fails_at_startup(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    settings = Settings(wecom=fake.settings(), channel_routes={"wecom": "carrier-pigeon"})

    with pytest.raises(ValueError, match="carrier-pigeon"):
        build_routes(settings, sessions=sessions, clock=clock)
