"""What every WeCom adapter is made with, and how a channel is listed in ``CHANNELS``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import ClassVar, Literal, Protocol

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.wecom.client import WeComClient
from adapters.wecom.media import MediaStore
from smr.channels import Capabilities, ChannelAdapter
from smr.config import WeComSettings

#: The API a channel calls, so the secret it takes (see ``WeComSettings.secret_for``):
#: 客户联系, 微信客服 or the app's own (应用消息).
Api = Literal["contact", "kf", "app"]


@dataclass(frozen=True)
class Wiring:
    """The corp's client (one connection pool and token cache), the secret the channel's API
    takes, the media store (uploads are the corp's: any app may send them), and the process's
    clock, sessions, playbooks folder and WeCom settings."""

    client: WeComClient
    secret: SecretStr
    media: MediaStore
    clock: Callable[[], datetime]
    sessions: async_sessionmaker[AsyncSession]
    playbooks_dir: Path
    settings: WeComSettings

    @property
    def task_timeout(self) -> timedelta:
        """How long a task a staff member must confirm may stay unconfirmed."""
        return timedelta(hours=self.settings.task_timeout_hours)


class Declared(Protocol):
    """What a channel's adapter class declares (``capabilities`` as a class attribute)."""

    capabilities: ClassVar[Capabilities]


@dataclass(frozen=True)
class Channel:
    """One WeCom channel: its adapter class, the API it calls, how to make it, and whether
    playbooks name it (or SMR plans it itself, like the staff channel)."""

    adapter: type[Declared]
    api: Api
    make: Callable[[Wiring], ChannelAdapter]
    playbook: bool = True
