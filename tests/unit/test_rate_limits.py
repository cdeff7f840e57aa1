"""Rate limits: which limits a channel takes, and how policies.yaml declares them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pytest
from pydantic import SecretStr

from adapters.wecom import WeComApp, WeComClient
from smr.channels import Capabilities, ChannelAdapter, OutboundMessage, SendRate, SendResult
from smr.playbooks import Policies, RateLimit, load_policies_text
from smr.services.ratelimits import limits_of


def now() -> datetime:
    return datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


class Unlimited:
    """An adapter that declares no limits."""

    name: ClassVar[str] = "unlimited"
    capabilities: ClassVar[Capabilities] = Capabilities(idempotent=True)

    async def send(self, message: OutboundMessage) -> SendResult:
        return SendResult()

    async def aclose(self) -> None:
        return None


def routes() -> dict[str, ChannelAdapter]:
    client = WeComClient(corp_id="ww1", base_url="http://wecom.test", timeout=1)
    app = WeComApp(client, SecretStr("secret"), clock=now, agent_id="1000002")
    return {"staff": app, "sms": Unlimited()}


def test_the_wecom_app_channel_declares_what_message_send_takes_per_staff_member() -> None:
    assert limits_of(routes(), Policies()) == {
        "staff": (
            SendRate(max=30, per=timedelta(minutes=1), key="staff"),
            SendRate(max=1000, per=timedelta(hours=1), key="staff"),
        )
    }


def test_policies_replace_a_channels_limits_and_add_others() -> None:
    policies = Policies(
        rate_limits=[
            RateLimit(channel="staff", max=20, per=timedelta(minutes=1), key="staff"),
            RateLimit(channel="sms", max=20, per=timedelta(seconds=1)),
            RateLimit(channel="sms", max=500, per=timedelta(minutes=1)),
        ]
    )

    assert limits_of(routes(), policies) == {
        "staff": (SendRate(max=20, per=timedelta(minutes=1), key="staff"),),
        "sms": (
            SendRate(max=20, per=timedelta(seconds=1)),
            SendRate(max=500, per=timedelta(minutes=1)),
        ),
    }


def test_rate_limits_parse() -> None:
    text = "rate_limits:\n  - {channel: staff, max: 30, per: 1m, key: staff}\n"

    policies, errors = load_policies_text(text, filename="policies.yaml")

    assert errors == []
    assert policies is not None
    assert [limit.rate for limit in policies.rate_limits] == [
        SendRate(max=30, per=timedelta(minutes=1), key="staff")
    ]


@pytest.mark.parametrize(
    ("line", "path", "message"),
    [
        ("{channel: sms, max: 0, per: 1s}", "rate_limits[0].max", "must be at least 1"),
        (
            "{channel: sms, max: 5, per: 0s}",
            "rate_limits[0].per",
            "a rate limit needs a period longer than 0s",
        ),
        (
            "{channel: staff, max: 30, per: 1m, key: shop}",
            "rate_limits[0].key",
            "must be one of: staff, contact (got text 'shop')",
        ),
        ("{channel: sms, max: 5, per: 1s, burst: 9}", "rate_limits[0].burst", "unknown field"),
        ("{channel: SMS, max: 5, per: 1s}", "rate_limits[0].channel", None),
    ],
)
def test_smr_check_reports_a_bad_rate_limit_where_it_is(
    line: str, path: str, message: str | None
) -> None:
    text = f"timezone: Asia/Shanghai\nrate_limits:\n  - {line}\n"

    policies, [error] = load_policies_text(text, filename="policies.yaml")

    assert policies is None
    assert (error.file, error.line, error.path) == ("policies.yaml", 3, path)
    if message is not None:
        assert error.message.startswith(message)


def test_a_rate_limit_on_a_channel_that_does_not_exist_is_a_warning_at_its_line() -> None:
    text = (
        "timezone: Asia/Shanghai\nrate_limits:\n"
        "  - {channel: staff, max: 30, per: 1m, key: staff}\n"
        "  - {channel: wecm, max: 5, per: 1s}\n"
    )

    policies, problems = load_policies_text(text, filename="p.yaml", channels=["wecom", "sms"])

    assert policies is not None
    assert len(policies.rate_limits) == 2
    (warning,) = problems
    assert (warning.severity, warning.line, warning.path) == (
        "warning",
        4,
        "rate_limits[1].channel",
    )
    assert "no channel 'wecm' (did you mean 'wecom'?)" in warning.message
