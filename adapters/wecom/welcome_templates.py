"""Group welcome templates (入群欢迎语素材) in WeCom, with the 客户联系 secret.

- ``externalcontact/group_welcome_template/add``: ``text.content`` (≤3000 bytes, WeCom writes
  each joiner's nickname for ``%NICKNAME%``), ONE of ``image`` / ``link`` / ``miniprogram`` /
  ``file`` / ``video``, and ``notify`` 1/0 (WeCom asks the staff to apply it to their groups)
  → ``template_id``;
- ``…/edit``: ``template_id`` and the same content fields (no ``notify``);
- ``…/del``: ``template_id``.

A template lives for months, so its picture goes as ``image.pic_url``: a permanent
media/uploadimg URL (at most 2 MB), not a media_id valid 3 days. A link's ``picurl`` is one
too. A mini-program card's cover (``pic_media_id``), a video and a file can only be media_ids
(media/upload). Uploads go through the media store: each content once, a refused cached
media_id (40007) uploaded again once. ``agentid`` is only for old third-party suites: not sent.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.wecom import attachments as shapes
from adapters.wecom.client import WeComClient
from adapters.wecom.media import MediaStore
from smr.channels import PermanentSendError
from smr.config import WeComSettings
from smr.content import Image
from smr.playbooks.group_welcome import WelcomeContent
from smr.repositories.media import UploadKind
from smr.services.group_welcome import WelcomeTemplates

API = "externalcontact/group_welcome_template"


async def content_body(made: WelcomeContent, ids: shapes.MediaIds) -> dict[str, Any]:
    """The content fields add and edit take."""
    body: dict[str, Any] = {"text": {"content": made.text}} if made.text else {}
    item = made.attachment
    if isinstance(item, Image):
        body["image"] = {"pic_url": await ids.ref(item.media, UploadKind.PICTURE_URL)}
    elif item is not None:
        body |= await shapes.group_welcome([item], ids)
    return body


class WeComWelcomeTemplates(WelcomeTemplates):
    """``WelcomeTemplates`` over one WeCom client, the 客户联系 secret and a media store."""

    def __init__(self, client: WeComClient, secret: SecretStr, *, media: MediaStore) -> None:
        self._client = client
        self._secret = secret
        self._media = media

    def __repr__(self) -> str:
        return f"WeComWelcomeTemplates({self._client!r})"

    async def _with_content(self, api: str, made: WelcomeContent, **fields: Any) -> dict[str, Any]:
        async def build(ids: shapes.MediaIds) -> dict[str, Any]:
            return {**fields, **await content_body(made, ids)}

        async def call(body: dict[str, Any]) -> dict[str, Any]:
            return await self._client.call(f"{API}/{api}", self._secret, body)

        return await shapes.with_media(self._media, build, call)

    async def add(self, content: WelcomeContent) -> str:
        answer = await self._with_content("add", content, notify=1 if content.notify else 0)
        template_id = answer.get("template_id")
        if not isinstance(template_id, str) or not template_id:
            raise PermanentSendError(f"{API}/add: the answer has no template_id")
        return template_id

    async def edit(self, template_id: str, content: WelcomeContent) -> None:
        await self._with_content("edit", content, template_id=template_id)

    async def delete(self, template_id: str) -> None:
        await self._client.call(f"{API}/del", self._secret, {"template_id": template_id})

    async def aclose(self) -> None:
        await self._media.aclose()
        await self._client.aclose()


def build_welcome_templates(
    settings: WeComSettings,
    *,
    sessions: async_sessionmaker[AsyncSession],
    clock: Callable[[], datetime],
    playbooks_dir: Path,
) -> WelcomeTemplates | None:
    """The WeCom group welcome template API, or None without a corp id and a 客户联系 secret."""
    secret = settings.secret_for("contact")
    if not settings.corp_id or secret is None:
        return None
    client = WeComClient(
        corp_id=settings.corp_id, base_url=settings.base_url, timeout=settings.timeout_seconds
    )
    media = MediaStore(client, secret, sessions=sessions, playbooks_dir=playbooks_dir, clock=clock)
    return WeComWelcomeTemplates(client, secret, media=media)
