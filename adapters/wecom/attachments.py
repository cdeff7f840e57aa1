"""``smr.content`` attachments → the JSON each WeCom API takes.

- ``message_attachments``: add_msg_template and send_welcome_msg ``attachments`` (up to 9):
  image ``media_id``; link ``title``/``picurl``/``desc``/``url`` (``picurl`` is a permanent
  media/uploadimg URL); miniprogram ``title``/``pic_media_id``/``appid``/``page``; video and
  file ``media_id``;
- ``kf_message``: one kf/send_msg message per attachment (image, video, file ``media_id``;
  link ``title``/``desc``/``url``/``thumb_media_id``; miniprogram ``appid``/``title``/
  ``thumb_media_id``/``pagepath``);
- ``moment_attachments``: add_moment_task ``attachments``: up to 9 images, or 1 video, or 1
  link (its cover ``media_id`` required), all uploaded with upload_attachment; no mixing;
- ``group_welcome``: a group welcome template (group_welcome_template/add) takes text and ONE
  other item, as its own key.

Rendered texts are checked against WeCom's limits here (PermanentSendError): links must be
https. ``with_media`` makes a call and, when WeCom refuses a cached media_id (40007), uploads
the media again and makes it once more.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from adapters.wecom.errors import InvalidMedia
from adapters.wecom.media import MediaStore, Uploaded
from smr import content
from smr.channels import PermanentSendError
from smr.content import Attachment, File, Image, Link, Media, MiniProgram, Video
from smr.repositories.media import UploadKind

T = TypeVar("T")
R = TypeVar("R")
MOMENT_LINK_TITLE_BYTES = 64
MAX_MOMENT_IMAGES = 9


class MediaIds:
    """Uploads the media of one call, and remembers which ids came from the cache."""

    def __init__(self, store: MediaStore, *, fresh: bool = False) -> None:
        self._store = store
        self._fresh = fresh
        self.cached: list[Uploaded] = []

    async def ref(self, media: Media, kind: UploadKind) -> str:
        uploaded = await self._store.upload(media, kind, fresh=self._fresh)
        if uploaded.cached and uploaded.stored.media_id is not None:
            self.cached.append(uploaded)
        return uploaded.ref


async def with_media(
    store: MediaStore,
    build: Callable[[MediaIds], Awaitable[T]],
    call: Callable[[T], Awaitable[R]],
) -> R:
    """``call(await build(ids))``; after InvalidMedia (40007) for a payload that used cached
    media_ids, forget them, build with fresh uploads and call once more."""
    ids = MediaIds(store)
    payload = await build(ids)
    try:
        return await call(payload)
    except InvalidMedia:
        if not ids.cached:
            raise
        await store.forget(ids.cached)
    return await call(await build(MediaIds(store, fresh=True)))


# --- add_msg_template, send_welcome_msg ---


async def message_attachments(items: Sequence[Attachment], ids: MediaIds) -> list[dict[str, Any]]:
    if len(items) > content.MAX_ATTACHMENTS:
        raise PermanentSendError(f"{len(items)} attachments; WeCom takes {content.MAX_ATTACHMENTS}")
    return [await message_attachment(item, ids) for item in items]


async def message_attachment(item: Attachment, ids: MediaIds) -> dict[str, Any]:
    body: dict[str, Any]
    match item:
        case Image(media=media):
            body = {"media_id": await ids.ref(media, UploadKind.IMAGE)}
        case Video(media=media):
            body = {"media_id": await ids.ref(media, UploadKind.VIDEO)}
        case File(media=media):
            body = {"media_id": await ids.ref(media, UploadKind.FILE)}
        case Link():
            body = _link(item, content.LINK_TITLE_BYTES)
            if item.picture is not None:
                body["picurl"] = await ids.ref(item.picture, UploadKind.PICTURE_URL)
        case MiniProgram():
            body = {
                "title": _limited("miniprogram title", item.title, content.MINIPROGRAM_TITLE_BYTES),
                "pic_media_id": await ids.ref(item.cover, UploadKind.IMAGE),
                "appid": item.appid,
                "page": item.page,
            }
    return {"msgtype": str(item.kind), str(item.kind): body}


def _link(item: Link, title_bytes: int) -> dict[str, Any]:
    body = {"title": _limited("link title", item.title, title_bytes), "url": _url(item.url)}
    if item.description:
        limit = content.LINK_DESCRIPTION_BYTES
        body["desc"] = _limited("link description", item.description, limit)
    return body


def _limited(what: str, text: str, limit: int) -> str:
    size = len(text.encode())
    if not text or size > limit:
        raise PermanentSendError(f"{what} is {size} bytes; WeCom takes 1 to {limit}")
    return text


def _url(url: str) -> str:
    if not url.startswith("https://") or any(c.isspace() for c in url):
        raise PermanentSendError(f"link url '{url[:100]}' is not an https URL")
    return _limited("link url", url, content.URL_BYTES)


# --- kf/send_msg: one message per attachment ---


async def kf_message(item: Attachment, ids: MediaIds) -> dict[str, Any]:
    """``msgtype`` and its object, for one kf/send_msg call."""
    if isinstance(item, Link):
        if item.picture is None:
            raise PermanentSendError("微信客服 sends a link only with a picture (thumb_media_id)")
        body = {**_link(item, content.LINK_TITLE_BYTES), "desc": item.description or ""}
        body["thumb_media_id"] = await ids.ref(item.picture, UploadKind.IMAGE)
        return {"msgtype": "link", "link": body}
    if isinstance(item, MiniProgram):
        body = {
            "appid": item.appid,
            "title": _limited("miniprogram title", item.title, content.MINIPROGRAM_TITLE_BYTES),
            "thumb_media_id": await ids.ref(item.cover, UploadKind.IMAGE),
            "pagepath": item.page,
        }
        return {"msgtype": "miniprogram", "miniprogram": body}
    return await message_attachment(item, ids)  # image, video, file: the same shape


# --- add_moment_task ---


async def moment_attachments(items: Sequence[Attachment], ids: MediaIds) -> list[dict[str, Any]]:
    """9 images, or 1 video, or 1 link; anything else is refused rather than sent in part."""
    kinds = {item.kind for item in items}
    if len(kinds) > 1:
        raise PermanentSendError("Moments take images, or one video, or one link: not a mix")
    if kinds - {content.Kind.IMAGE, content.Kind.VIDEO, content.Kind.LINK}:
        raise PermanentSendError(f"Moments take no {kinds.pop()} (images, a video or a link)")
    most = MAX_MOMENT_IMAGES if kinds == {content.Kind.IMAGE} else 1
    if len(items) > most:
        raise PermanentSendError(f"{len(items)} attachments; Moments take {most} of this kind")
    return [await _moment_item(item, ids) for item in items]


async def _moment_item(item: Attachment, ids: MediaIds) -> dict[str, Any]:
    match item:
        case Image(media=media):
            return {"msgtype": "image", "image": {"media_id": await ids.ref(media, _M_IMAGE)}}
        case Video(media=media):
            video = {"media_id": await ids.ref(media, UploadKind.MOMENT_VIDEO)}
            return {"msgtype": "video", "video": video}
        case Link(picture=picture) if picture is not None:
            link = {
                "title": _limited("Moments link title", item.title, MOMENT_LINK_TITLE_BYTES),
                "url": _url(item.url),
                "media_id": await ids.ref(picture, _M_IMAGE),
            }
            return {"msgtype": "link", "link": link}
        case _:
            raise PermanentSendError("a Moments link needs a picture (its cover)")


_M_IMAGE = UploadKind.MOMENT_IMAGE


# --- group_welcome_template ---


async def group_welcome(items: Sequence[Attachment], ids: MediaIds) -> dict[str, Any]:
    """The one non-text item of a group welcome template, as its own key (``{"image": …}``).
    WeCom keeps only one (by priority) and drops the rest without a word, so more is refused."""
    if len(items) > 1:
        raise PermanentSendError(
            f"{len(items)} attachments; a group welcome template takes text and one other item"
        )
    if not items:
        return {}
    shaped = await message_attachment(items[0], ids)
    kind = shaped["msgtype"]
    return {kind: shaped[kind]}
