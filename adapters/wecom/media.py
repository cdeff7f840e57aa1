"""WeCom media: the pictures, videos and files a send carries, uploaded once per content.

A file comes from the playbooks folder (``Media.path``) or an https URL (``Media.url``, fetched
with a bounded size). Its SHA-256 and the upload kind key the cache (``wecom_media``):

- ``media/upload`` (type image / video / file, multipart field ``media``): a media_id valid
  3 days, for mass-send tasks, welcome messages and 微信客服;
- ``media/upload_attachment`` (media_type image / video, attachment_type 1): a media_id valid
  3 days, for Moments (朋友圈);
- ``media/uploadimg``: a permanent picture URL (a link's ``picurl``); WeCom allows 3,000 a
  month, so it is never uploaded twice.

A cached media_id is used until less than ``MARGIN`` of its 3 days remain. WeCom may still
refuse it (40007, ``InvalidMedia``): the sender then ``forget``s it and uploads again, once.
Sizes and formats (§5 of WeCom's 素材管理) are checked before uploading.
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.wecom.client import WeComClient
from adapters.wecom.fetch import fetch, new_http, sniff
from smr.channels import PermanentSendError
from smr.content import MB, MIN_BYTES, Kind, Media
from smr.db import unit_of_work
from smr.playbooks.attachment_fields import check_file
from smr.repositories import media as media_repo
from smr.repositories.media import StoredMedia, UploadKind

LIFETIME = timedelta(days=3)
MARGIN = timedelta(hours=1)
FETCH_TIMEOUT_SECONDS = 30.0
_CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "mp4": "video/mp4"}
_SUFFIXES = {"png": ".png", "jpeg": ".jpg", "mp4": ".mp4"}


@dataclass(frozen=True, slots=True)
class Upload:
    """How one kind of upload is made and what WeCom takes for it."""

    api: str
    query: dict[str, str]
    kind: Kind
    max_bytes: int
    formats: tuple[str, ...]  # sniffed formats WeCom takes; () for any file


_PICTURE = ("png", "jpeg")
UPLOADS: dict[UploadKind, Upload] = {
    UploadKind.IMAGE: Upload("media/upload", {"type": "image"}, Kind.IMAGE, 10 * MB, _PICTURE),
    UploadKind.VIDEO: Upload("media/upload", {"type": "video"}, Kind.VIDEO, 10 * MB, ("mp4",)),
    UploadKind.FILE: Upload("media/upload", {"type": "file"}, Kind.FILE, 20 * MB, ()),
    UploadKind.MOMENT_IMAGE: Upload(
        "media/upload_attachment",
        {"media_type": "image", "attachment_type": "1"},
        Kind.IMAGE,
        10 * MB,
        _PICTURE,
    ),
    UploadKind.MOMENT_VIDEO: Upload(
        "media/upload_attachment",
        {"media_type": "video", "attachment_type": "1"},
        Kind.VIDEO,
        10 * MB,
        ("mp4",),
    ),
    UploadKind.PICTURE_URL: Upload("media/uploadimg", {}, Kind.IMAGE, 2 * MB, _PICTURE),
}


@dataclass(frozen=True, slots=True)
class Uploaded:
    """A file as WeCom knows it; ``cached``: from an earlier upload, not this send's."""

    stored: StoredMedia
    cached: bool

    @property
    def ref(self) -> str:
        """The media_id, or the URL of a picture_url upload."""
        return str(self.stored.media_id or self.stored.url)


class MediaStore:
    """Uploads media for the WeCom channels of one corp; see the module docstring.

    ``upload`` raises PermanentSendError (a missing or unfit file, a URL that answers 4xx or
    is too large) or RetriableSendError (a URL or WeCom that times out or answers 5xx).
    """

    def __init__(
        self,
        client: WeComClient,
        secret: SecretStr,
        *,
        sessions: async_sessionmaker[AsyncSession],
        playbooks_dir: Path,
        clock: Callable[[], datetime],
        fetch_timeout: float = FETCH_TIMEOUT_SECONDS,
    ) -> None:
        self._client = client
        self._secret = secret
        self._sessions = sessions
        self._root = playbooks_dir
        self._clock = clock
        self._http = new_http(fetch_timeout)
        self._locks: weakref.WeakValueDictionary[tuple[str, UploadKind], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    def __repr__(self) -> str:
        return f"MediaStore({self._client!r}, playbooks_dir={str(self._root)!r})"

    async def upload(self, media: Media, kind: UploadKind, *, fresh: bool = False) -> Uploaded:
        """``media`` uploaded as ``kind``: the cached upload of the same content when it is
        valid for ``MARGIN`` more (unless ``fresh``), else a new upload."""
        how = UPLOADS[kind]
        data, name = await self._read(media, how)
        name = _checked(data, name, media.source, how)
        sha256 = hashlib.sha256(data).hexdigest()
        lock = self._locks.setdefault((sha256, kind), asyncio.Lock())
        async with lock:  # one upload of a content at a time; the others then find it
            if not fresh and (cached := await self._cached(sha256, kind)) is not None:
                return Uploaded(cached, cached=True)
            stored = await self._send(data, name, sha256, kind)
            async with unit_of_work(self._sessions) as session:
                await media_repo.save(session, stored)
            return Uploaded(stored, cached=False)

    async def forget(self, uploads: list[Uploaded]) -> None:
        """Drop cached media_ids WeCom refused (40007), so the next send uploads again."""
        async with unit_of_work(self._sessions) as session:
            for upload in uploads:
                s = upload.stored
                if s.media_id is not None:
                    await media_repo.forget(
                        session,
                        corp_id=s.corp_id,
                        sha256=s.sha256,
                        kind=s.kind,
                        media_id=s.media_id,
                    )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _cached(self, sha256: str, kind: UploadKind) -> StoredMedia | None:
        async with unit_of_work(self._sessions) as session:
            return await media_repo.find(
                session,
                corp_id=self._client.corp_id,
                sha256=sha256,
                kind=kind,
                valid_at=self._clock() + MARGIN,
            )

    async def _read(self, media: Media, how: Upload) -> tuple[bytes, str]:
        if media.url is not None:
            data = await fetch(self._http, media.url, max_bytes=how.max_bytes)
            return data, PurePosixPath(media.url.split("?")[0].split("#")[0]).name
        assert media.path is not None
        try:
            found = check_file(self._root, media.path, how.kind)
        except ValueError as exc:
            raise PermanentSendError(f"media {media.path}: {exc}") from None
        return await asyncio.to_thread(found.read_bytes), PurePosixPath(media.path).name

    async def _send(self, data: bytes, name: str, sha256: str, kind: UploadKind) -> StoredMedia:
        how = UPLOADS[kind]
        content_type = _CONTENT_TYPES.get(sniff(data) or "", "application/octet-stream")
        answer = await self._client.call(
            how.api,
            self._secret,
            None,
            query=how.query,
            files={"media": (name, data, content_type)},
        )
        now = self._clock()
        return StoredMedia(
            corp_id=self._client.corp_id,
            sha256=sha256,
            kind=kind,
            size=len(data),
            uploaded_at=now,
            **_ref(how.api, answer, now),
        )


def _ref(api: str, answer: dict[str, Any], now: datetime) -> dict[str, Any]:
    if api == "media/uploadimg":
        if not answer.get("url"):
            raise PermanentSendError(f"{api}: errcode=0 without a url")
        return {"url": str(answer["url"])}
    if not answer.get("media_id"):
        raise PermanentSendError(f"{api}: errcode=0 without a media_id")
    return {"media_id": str(answer["media_id"]), "expires_at": now + LIFETIME}


def _checked(data: bytes, name: str, source: str, how: Upload) -> str:
    """The file name to upload ``data`` as, once its size and format suit ``how``."""
    size, label = len(data), _label(source)
    if not MIN_BYTES <= size <= how.max_bytes:
        raise PermanentSendError(
            f"media {label} is {size:,} bytes; {how.api} takes {MIN_BYTES} to {how.max_bytes:,}"
        )
    found = sniff(data)
    if how.formats and found not in how.formats:
        wanted = " or ".join(how.formats)
        raise PermanentSendError(f"media {label} is not {wanted} ({how.kind} for {how.api})")
    stem = PurePosixPath(name).stem or "media"
    if found is not None and PurePosixPath(name).suffix.lower() not in _ACCEPTED[found]:
        return stem + _SUFFIXES[found]
    return name if PurePosixPath(name).suffix else f"{stem}.bin"


_ACCEPTED: dict[str, tuple[str, ...]] = {
    "png": (".png",),
    "jpeg": (".jpg", ".jpeg"),
    "mp4": (".mp4",),
}


def _label(source: str) -> str:
    """A source fit for an error text: a URL without its query (it may hold a token)."""
    return source.split("?")[0][:200]
