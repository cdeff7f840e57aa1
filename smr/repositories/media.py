"""Media uploaded to WeCom, by corp, content hash and upload kind (table ``wecom_media``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from smr.models import WeComMedia, table_of
from smr.repositories._sql import dialect_name


class UploadKind(StrEnum):
    """How a file went to WeCom: media/upload as an image, video or file; upload_attachment
    for Moments (朋友圈) as an image or video; media/uploadimg for a permanent picture URL."""

    IMAGE = "image"
    VIDEO = "video"
    FILE = "file"
    MOMENT_IMAGE = "moment_image"
    MOMENT_VIDEO = "moment_video"
    PICTURE_URL = "picture_url"


@dataclass(frozen=True, slots=True)
class StoredMedia:
    """What WeCom answered for one upload: a ``media_id`` valid until ``expires_at``, or the
    permanent ``url`` of a picture (no ``expires_at``)."""

    corp_id: str
    sha256: str
    kind: UploadKind
    size: int
    uploaded_at: datetime
    media_id: str | None = None
    url: str | None = None
    expires_at: datetime | None = None


async def find(
    session: AsyncSession, *, corp_id: str, sha256: str, kind: UploadKind, valid_at: datetime
) -> StoredMedia | None:
    """The upload of this content as ``kind``, if it is still valid at ``valid_at``."""
    stmt = select(WeComMedia).where(
        WeComMedia.corp_id == corp_id,
        WeComMedia.sha256 == sha256,
        WeComMedia.kind == kind,
        or_(WeComMedia.expires_at.is_(None), WeComMedia.expires_at > valid_at),
    )
    row = await session.scalar(stmt)
    if row is None:
        return None
    return StoredMedia(
        corp_id=row.corp_id,
        sha256=row.sha256,
        kind=UploadKind(row.kind),
        size=row.size,
        uploaded_at=row.uploaded_at,
        media_id=row.media_id,
        url=row.url,
        expires_at=row.expires_at,
    )


async def save(session: AsyncSession, media: StoredMedia) -> None:
    """Store an upload, replacing an older upload of the same content and kind."""
    row: dict[str, Any] = {**asdict(media), "kind": str(media.kind)}
    module: Any = postgresql if dialect_name(session) == "postgresql" else sqlite
    changing = ("media_id", "url", "size", "uploaded_at", "expires_at")
    stmt = (
        module.insert(table_of(WeComMedia))
        .values(row)
        .on_conflict_do_update(
            index_elements=["corp_id", "sha256", "kind"],
            set_={column: row[column] for column in changing},
        )
    )
    await session.execute(stmt)


async def forget(
    session: AsyncSession, *, corp_id: str, sha256: str, kind: UploadKind, media_id: str
) -> None:
    """Drop an upload WeCom no longer knows (unless another upload has replaced it already)."""
    await session.execute(
        delete(WeComMedia).where(
            WeComMedia.corp_id == corp_id,
            WeComMedia.sha256 == sha256,
            WeComMedia.kind == kind,
            WeComMedia.media_id == media_id,
        )
    )
