"""Rich content a send carries beside its text: pictures, links, mini-program cards, videos, files.

What a playbook's ``attachments`` render to, what a delivery row stores (``as_json`` /
``from_json``) and what a channel adapter turns into its vendor's shapes. A picture, video or
file is either a ``path`` in the playbooks folder (``media/poster.png``) or an ``url``; exactly
one of the two is set. WeCom takes at most ``MAX_ATTACHMENTS`` per message.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, assert_never

MAX_ATTACHMENTS = 9
MB = 1024 * 1024


class Kind(StrEnum):
    IMAGE = "image"
    LINK = "link"
    MINIPROGRAM = "miniprogram"
    VIDEO = "video"
    FILE = "file"


@dataclass(frozen=True, slots=True)
class Media:
    """A file to upload: a path in the playbooks folder, or a URL to fetch it from."""

    path: str | None = None
    url: str | None = None

    def __post_init__(self) -> None:
        if (self.path is None) == (self.url is None):
            raise ValueError("media needs exactly one of 'path' and 'url'")

    @property
    def source(self) -> str:
        return self.path if self.path is not None else str(self.url)


@dataclass(frozen=True, slots=True)
class Image:
    media: Media
    kind: Kind = Kind.IMAGE


@dataclass(frozen=True, slots=True)
class Video:
    media: Media
    kind: Kind = Kind.VIDEO


@dataclass(frozen=True, slots=True)
class File:
    media: Media
    kind: Kind = Kind.FILE


@dataclass(frozen=True, slots=True)
class Link:
    title: str
    url: str
    description: str | None = None
    picture: Media | None = None
    kind: Kind = Kind.LINK


@dataclass(frozen=True, slots=True)
class MiniProgram:
    appid: str
    page: str
    title: str
    cover: Media
    kind: Kind = Kind.MINIPROGRAM


Attachment = Image | Video | File | Link | MiniProgram

#: The file formats WeCom takes for each kind of media (a file may be anything).
EXTENSIONS: dict[Kind, tuple[str, ...]] = {
    Kind.IMAGE: (".jpg", ".jpeg", ".png"),
    Kind.VIDEO: (".mp4",),
    Kind.FILE: (),
}
#: WeCom's sizes for media/upload (more than 5 bytes, at most these).
MIN_BYTES = 6
MAX_BYTES: dict[Kind, int] = {Kind.IMAGE: 10 * MB, Kind.VIDEO: 10 * MB, Kind.FILE: 20 * MB}
#: WeCom's text limits, in UTF-8 bytes (add_msg_template and send_welcome_msg).
LINK_TITLE_BYTES = 128
LINK_DESCRIPTION_BYTES = 512
URL_BYTES = 2048
MINIPROGRAM_TITLE_BYTES = 64


def as_json(attachment: Attachment) -> dict[str, Any]:
    """The attachment as a JSON object, ``kind`` first (the delivery row's form)."""
    data = _without_none(asdict(attachment))
    return {"kind": str(data.pop("kind")), **data}


def from_json(data: dict[str, Any]) -> Attachment:
    """Read back what ``as_json`` wrote. Raises ValueError for anything else."""
    fields = {k: v for k, v in data.items() if k != "kind"}
    try:
        kind = Kind(str(data.get("kind")))
        match kind:
            case Kind.IMAGE:
                return Image(_media(fields["media"]))
            case Kind.VIDEO:
                return Video(_media(fields["media"]))
            case Kind.FILE:
                return File(_media(fields["media"]))
            case Kind.LINK:
                picture = fields.get("picture")
                return Link(
                    title=fields["title"],
                    url=fields["url"],
                    description=fields.get("description"),
                    picture=_media(picture) if picture is not None else None,
                )
            case Kind.MINIPROGRAM:
                return MiniProgram(
                    appid=fields["appid"],
                    page=fields["page"],
                    title=fields["title"],
                    cover=_media(fields["cover"]),
                )
            case _:
                assert_never(kind)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not an attachment: {exc}") from None


def _without_none(data: dict[str, Any]) -> dict[str, Any]:
    return {
        k: _without_none(v) if isinstance(v, dict) else v for k, v in data.items() if v is not None
    }


def _media(data: Any) -> Media:
    if not isinstance(data, dict):
        raise ValueError("media must be an object")
    return Media(path=data.get("path"), url=data.get("url"))
