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
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.wecom import moments, transfer
from adapters.wecom.channels import WeComApp, WeComKf, WeComTags, WeComWelcome
from adapters.wecom.client import WeComClient
from adapters.wecom.media import MediaStore
from adapters.wecom.tasks import WeComGroupTasks, WeComTasks
from smr.channels import ChannelAdapter
from smr.config import WeComSettings
from smr.playbooks.steps.transfer import TRANSFER_CHANNEL

#: Makes a channel's adapter from the corp's client, the app secret and the media store (the
#: media ids it uploads are the corp's: any app may send them).
Maker = Callable[[WeComClient, SecretStr, MediaStore], ChannelAdapter]

__all__ = [
    "WeComApp",
    "WeComClient",
    "WeComGroupTasks",
    "WeComKf",
    "WeComTags",
    "WeComTasks",
    "WeComWelcome",
    "build_wecom_routes",
]


def build_wecom_routes(
    settings: WeComSettings,
    *,
    sessions: async_sessionmaker[AsyncSession],
    clock: Callable[[], datetime],
    playbooks_dir: Path,
    staff_channel: str,
    tag_channel: str,
    skip: Collection[str] = (),
) -> dict[str, ChannelAdapter]:
    """Channel → WeCom adapter, for each channel whose credentials are configured (a corp id
    and the secret its API takes; the staff channel also needs the agent id). All share one
    client, so one connection pool and one token cache per app secret, and one media store
    (uploads for attachments, files read from ``playbooks_dir``)."""
    contact, kf, app = (settings.secret_for(s) for s in ("contact", "kf", "app"))
    timeout = timedelta(hours=settings.task_timeout_hours)
    agent_id = settings.agent_id
    makers: dict[str, tuple[SecretStr | None, Maker]] = {
        "wecom_welcome": (contact, lambda c, s, m: WeComWelcome(c, s, clock=clock, media=m)),
        "wecom": (
            contact,
            lambda c, s, m: WeComTasks(c, s, clock=clock, timeout=timeout, media=m),
        ),
        "wecom_group": (
            contact,
            lambda c, s, m: WeComGroupTasks(
                c, s, clock=clock, timeout=timeout, media=m, sessions=sessions
            ),
        ),
        "wecom_kf": (
            kf,
            lambda c, s, m: WeComKf(c, s, clock=clock, sessions=sessions, media=m),
        ),
        "moment": (
            contact,
            moments.maker(
                clock=clock, timeout=timeout, sessions=sessions, playbooks_dir=playbooks_dir
            ),
        ),
        tag_channel: (contact, lambda c, s, m: WeComTags(c, s, clock=clock)),
        TRANSFER_CHANNEL: (contact, transfer.maker(clock=clock, sessions=sessions)),
        staff_channel: (
            app if agent_id else None,
            lambda c, s, m: WeComApp(c, s, clock=clock, agent_id=agent_id or ""),
        ),
    }
    wanted = [
        (channel, secret, make)
        for channel, (secret, make) in makers.items()
        if secret is not None and channel not in skip
    ]
    if not settings.corp_id or not wanted:
        return {}
    client = WeComClient(
        corp_id=settings.corp_id, base_url=settings.base_url, timeout=settings.timeout_seconds
    )
    media_secret = next(s for s in (contact, kf, app) if s is not None)
    media = MediaStore(
        client,
        media_secret,
        sessions=sessions,
        playbooks_dir=playbooks_dir,
        clock=clock,
    )
    return {channel: make(client, secret, media) for channel, secret, make in wanted}
