"""WeCom (企业微信) channels, to the letter of the server API (developer.work.weixin.qq.com).

- ``client``: one ``httpx.AsyncClient`` per corp, access tokens cached per app secret,
  single-flight refresh, one replay after 40001 / 40014 / 42001;
- ``errors``: the errcode → outcome table;
- ``channels``: ``wecom_welcome`` (send_welcome_msg), ``wecom_kf`` (kf/send_msg) and the staff
  channel (message/send);
- ``tasks``: ``wecom`` and ``wecom_group``, mass-send tasks (add_msg_template) whose deliveries
  are ``awaiting`` until the owner staff sends them, and their reports;
- ``transfer``: ``wecom_transfer``, customer transfer (客户继承, 在职 and 离职), awaiting
  WeCom's transfer_result;
- ``kf_sync``: the kf/sync_msg pull a ``kf_msg_or_event`` callback asks for;
- ``media``, ``attachments``, ``rich``: a send's pictures, links, cards, videos and files,
  uploaded once per content (files from the playbooks folder or https URLs) and shaped for
  each API.

Configuration (``SMR_WECOM__…``): ``CORP_ID`` and ``SECRET`` serve every channel; a separate
``CONTACT_SECRET`` (客户联系) or ``KF_SECRET`` (微信客服) takes over for its APIs; the staff
channel also needs ``AGENT_ID``. ``BASE_URL`` (a proxy, or a fake WeCom in tests),
``TIMEOUT_SECONDS`` (10) and ``TASK_TIMEOUT_HOURS`` (72: a mass-send task still unsent is then
cancelled and its deliveries fail). A channel without its credentials stays on the mock.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.wecom import moments, transfer
from adapters.wecom.channels import WeComApp, WeComKf, WeComTags, WeComWelcome
from adapters.wecom.client import WeComClient
from adapters.wecom.media import MediaStore
from adapters.wecom.tasks import WeComGroupTasks, WeComTasks
from adapters.wecom.wiring import Channel, Wiring
from smr.channels import Capabilities, ChannelAdapter
from smr.config import WeComSettings
from smr.playbooks.policies import STAFF_CHANNEL
from smr.playbooks.steps.transfer import TRANSFER_CHANNEL
from smr.services.plan import TAG_CHANNEL

__all__ = [
    "CHANNELS",
    "WeComApp",
    "WeComClient",
    "WeComGroupTasks",
    "WeComKf",
    "WeComTags",
    "WeComTasks",
    "WeComWelcome",
    "build_wecom_routes",
    "playbook_channels",
]


def _welcome(w: Wiring) -> ChannelAdapter:
    return WeComWelcome(w.client, w.secret, clock=w.clock, media=w.media)


def _tasks(w: Wiring) -> ChannelAdapter:
    return WeComTasks(w.client, w.secret, clock=w.clock, timeout=w.task_timeout, media=w.media)


def _group_tasks(w: Wiring) -> ChannelAdapter:
    return WeComGroupTasks(
        w.client,
        w.secret,
        clock=w.clock,
        timeout=w.task_timeout,
        media=w.media,
        sessions=w.sessions,
    )


def _kf(w: Wiring) -> ChannelAdapter:
    return WeComKf(w.client, w.secret, clock=w.clock, sessions=w.sessions, media=w.media)


def _tags(w: Wiring) -> ChannelAdapter:
    return WeComTags(w.client, w.secret, clock=w.clock)


def _app(w: Wiring) -> ChannelAdapter:
    return WeComApp(w.client, w.secret, clock=w.clock, agent_id=w.settings.agent_id or "")


#: The WeCom channels, one line each: playbooks name the first ones; SMR plans the last three
#: itself (tag mirroring, customer transfer, staff notices).
CHANNELS: dict[str, Channel] = {
    "wecom_welcome": Channel(WeComWelcome, "contact", _welcome),
    "wecom": Channel(WeComTasks, "contact", _tasks),
    "wecom_group": Channel(WeComGroupTasks, "contact", _group_tasks),
    "wecom_kf": Channel(WeComKf, "kf", _kf),
    "moment": Channel(moments.WeComMoments, "contact", moments.make),
    TAG_CHANNEL: Channel(WeComTags, "contact", _tags, playbook=False),
    TRANSFER_CHANNEL: Channel(transfer.WeComTransfer, "contact", transfer.make, playbook=False),
    STAFF_CHANNEL: Channel(WeComApp, "app", _app, playbook=False),
}


def playbook_channels() -> dict[str, Capabilities]:
    """The channels playbooks may name, with what their adapters declare."""
    return {name: c.adapter.capabilities for name, c in CHANNELS.items() if c.playbook}


def build_wecom_routes(
    settings: WeComSettings,
    *,
    sessions: async_sessionmaker[AsyncSession],
    clock: Callable[[], datetime],
    playbooks_dir: Path,
    skip: Collection[str] = (),
) -> dict[str, ChannelAdapter]:
    """Channel → WeCom adapter, for each channel whose credentials are configured (a corp id
    and the secret its API takes; the staff channel also needs the agent id). All share one
    client, so one connection pool and one token cache per app secret, and one media store
    (uploads for attachments, files read from ``playbooks_dir``)."""
    secrets = {
        name: secret
        for name, channel in CHANNELS.items()
        if name not in skip
        and (secret := settings.secret_for(channel.api)) is not None
        and (channel.api != "app" or settings.agent_id)
    }
    if not settings.corp_id or not secrets:
        return {}
    client = WeComClient(
        corp_id=settings.corp_id, base_url=settings.base_url, timeout=settings.timeout_seconds
    )
    media = MediaStore(
        client,
        next(iter(secrets.values())),
        sessions=sessions,
        playbooks_dir=playbooks_dir,
        clock=clock,
    )

    def wired(secret: SecretStr) -> Wiring:
        return Wiring(client, secret, media, clock, sessions, playbooks_dir, settings)

    return {name: CHANNELS[name].make(wired(secret)) for name, secret in secrets.items()}
