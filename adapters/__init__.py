"""Channel adapters, one module per vendor, and the explicit registry SMR looks them up in."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.mock import MockAdapter
from smr.channels import ChannelAdapter
from smr.config import Settings
from smr.services.plan import STAFF_CHANNEL

#: Channel names a playbook may use. A name whose vendor is not configured routes to the mock.
PLAYBOOK_CHANNELS: tuple[str, ...] = ("mock", "wecom", "wecom_welcome", "wecom_kf", "sms")


def build_routes(
    settings: Settings,
    *,
    sessions: async_sessionmaker[AsyncSession],
    clock: Callable[[], datetime],
) -> dict[str, ChannelAdapter]:
    """Channel name → the adapter that serves it in this configuration."""
    mock = MockAdapter(settings.mock, sessions=sessions, clock=clock)
    # Vendor adapters join here as they are configured; until then each channel is the mock.
    return dict.fromkeys((*PLAYBOOK_CHANNELS, STAFF_CHANNEL), mock)
