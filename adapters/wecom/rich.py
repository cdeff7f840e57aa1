"""Sending text with attachments: in one call (``attachments`` beside ``text``) or, for
微信客服, one kf/send_msg call per part.

The media of a send are uploaded through the ``MediaStore``; a channel built without one
refuses attachments (PermanentSendError) rather than drop them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from pydantic import SecretStr

from adapters.wecom import attachments as shapes
from adapters.wecom.client import WeComClient
from adapters.wecom.media import MediaStore
from smr.channels import PermanentSendError, SendError
from smr.content import Attachment

#: kf/send_msg's msgid: at most 32 bytes of [0-9a-zA-Z_-].
KF_MSGID_BYTES = 32


def text_body(text: str) -> dict[str, Any]:
    """``{"text": {"content": …}}``, or nothing for a send of attachments alone."""
    return {"text": {"content": text}} if text else {}


def store_for(media: MediaStore | None, items: Sequence[Attachment]) -> MediaStore:
    if media is None:
        raise PermanentSendError(
            f"{len(items)} attachments, and no media store to upload them with"
        )
    return media


async def call(
    client: WeComClient,
    secret: SecretStr,
    api: str,
    body: dict[str, Any],
    *,
    items: Sequence[Attachment],
    media: MediaStore | None,
) -> dict[str, Any]:
    """``api`` with ``body`` and, when there are ``items``, their ``attachments`` (§6 shape)."""
    if not items:
        return await client.call(api, secret, body)

    async def build(ids: shapes.MediaIds) -> list[dict[str, Any]]:
        return await shapes.message_attachments(items, ids)

    async def send(shaped: list[dict[str, Any]]) -> dict[str, Any]:
        return await client.call(api, secret, {**body, "attachments": shaped})

    return await shapes.with_media(store_for(media, items), build, send)


async def kf_parts(
    client: WeComClient,
    secret: SecretStr,
    base: dict[str, Any],
    *,
    delivery_id: str,
    text: str,
    items: Sequence[Attachment],
    media: MediaStore | None,
) -> list[str]:
    """The text, then each attachment, as kf/send_msg calls; their msgids, in order. A part
    that fails raises its SendError, saying how many parts went before it."""
    sent: list[str] = []
    total = (1 if text else 0) + len(items)
    try:
        if text:
            body = {**base, "msgid": delivery_id, "msgtype": "text", "text": {"content": text}}
            sent.append(_msgid(await client.call("kf/send_msg", secret, body), delivery_id))
        for index, item in enumerate(items, start=1):
            msgid = part_msgid(delivery_id, index)
            answer = await _kf_item(client, secret, {**base, "msgid": msgid}, item, media)
            sent.append(_msgid(answer, msgid))
    except SendError as exc:
        if sent:
            exc.response = f"kf/send_msg: {len(sent)} of {total} messages sent; {exc.response}"
        raise
    return sent


async def _kf_item(
    client: WeComClient,
    secret: SecretStr,
    base: dict[str, Any],
    item: Attachment,
    media: MediaStore | None,
) -> dict[str, Any]:
    async def build(ids: shapes.MediaIds) -> dict[str, Any]:
        return await shapes.kf_message(item, ids)

    async def send(message: dict[str, Any]) -> dict[str, Any]:
        return await client.call("kf/send_msg", secret, {**base, **message})

    return await shapes.with_media(store_for(media, [item]), build, send)


def part_msgid(delivery_id: str, index: int) -> str:
    """The msgid of attachment ``index`` (from 1) of a delivery: its id and the index, or a
    digest of both when that is longer than WeCom takes."""
    msgid = f"{delivery_id}-{index}"
    if len(msgid) <= KF_MSGID_BYTES:
        return msgid
    return hashlib.sha256(msgid.encode()).hexdigest()[:KF_MSGID_BYTES]


def _msgid(answer: dict[str, Any], ours: str) -> str:
    return str(answer.get("msgid") or ours)
