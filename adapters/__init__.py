"""Channel adapters, one module per vendor, and the explicit registry SMR looks them up in.

A channel goes to its vendor's adapter when that vendor is configured (WeCom: ``SMR_WECOM__…``;
``sms``: ``SMR_SMS__PROVIDER`` and its keys), else to the mock, so the service runs without any
credentials. ``SMR_CHANNEL_ROUTES='{"wecom": "mock"}'`` keeps a configured channel on the mock
(a staging setup). ``Runtime.describe_routes`` (``smr serve``'s banner, ``GET /v1/playbooks``)
shows where each channel goes: ``{"sms": "sms.aliyun"}`` or ``"sms.tencent"``, else ``"mock"``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.mock import MockAdapter
from adapters.sms import build_sms_routes
from adapters.sms.base import SmsChannel
from adapters.wecom import build_wecom_routes, playbook_channels
from smr.channels import Capabilities, ChannelAdapter
from smr.config import Settings
from smr.services.plan import INTERNAL_CHANNELS

#: Channel names a playbook may use, with what their vendor's adapter declares (which holds
#: for ``check`` and ``simulate`` even where the mock stands in for an unconfigured vendor).
#: A WeCom channel is listed in ``adapters.wecom.CHANNELS``.
PLAYBOOK_CHANNELS: dict[str, Capabilities] = {
    "mock": MockAdapter.capabilities,
    **playbook_channels(),
    "sms": SmsChannel.capabilities,
}
ROUTE_CHOICES = ("mock",)


def build_routes(
    settings: Settings,
    *,
    sessions: async_sessionmaker[AsyncSession],
    clock: Callable[[], datetime],
) -> dict[str, ChannelAdapter]:
    """Channel name → the adapter that serves it in this configuration."""
    channels = (*PLAYBOOK_CHANNELS, *INTERNAL_CHANNELS)
    forced = {c: v for c, v in settings.channel_routes.items() if c in channels}
    if unknown := {v for v in forced.values() if v not in ROUTE_CHOICES}:
        raise ValueError(f"SMR_CHANNEL_ROUTES: unknown route {sorted(unknown)}; use 'mock'")
    mock = MockAdapter(settings.mock, sessions=sessions, clock=clock)
    vendors = build_wecom_routes(
        settings.wecom,
        sessions=sessions,
        clock=clock,
        playbooks_dir=settings.playbooks_dir,
        skip=forced,
    )
    vendors |= build_sms_routes(settings.sms, clock=clock, skip=forced)
    return {channel: vendors.get(channel, mock) for channel in channels}
