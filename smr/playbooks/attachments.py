"""A ``send`` step's ``attachments``: pictures, links, mini-program cards, videos and files.

```yaml
attachments:                         # at most 9
  - image: media/poster.png          # a file in the playbooks folder, or an https URL
  - link: {title: 新品上市, url: "https://…/{{ contact.id }}", description: …, picture: media/c.jpg}
  - miniprogram: {appid: wx8bd80126147dfAAA, page: /pages/item, title: 立即购买, cover: media/c.png}
  - video: media/intro.mp4
  - file: media/manual.pdf
```

A local file must be a relative path inside the playbooks folder (no ``..``, no absolute path,
no symlink leading out) with a format WeCom takes (image: jpg, jpeg, png; video: mp4; file:
any). When the validation context carries ``base_dir`` (the playbooks folder), the file must
exist there and be of a size WeCom takes, so a missing file fails the load at its line.

URLs are https only: a media URL is fetched by SMR and a link is opened by customers, neither
over plain http. A media URL may be a template, but its ``https://host/`` is written out, so no
value rendered into it picks the host SMR fetches from. Link and mini-program texts are
templates; their static parts are checked against WeCom's byte limits here, the rendered values
when sending.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, assert_never

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from smr import content
from smr.content import Kind
from smr.playbooks.attachment_fields import (
    AppId,
    CardTitle,
    FileSource,
    ImageSource,
    LinkDescription,
    LinkTitle,
    LinkUrl,
    Title,
    VideoSource,
)
from smr.playbooks.expressions import Template, compile_template, is_template

ATTACHMENT_KEYS = tuple(str(kind) for kind in Kind)
#: The union's tags; error locations skip them (see ``smr.playbooks.errors``).
ATTACHMENT_TAGS = frozenset(f"attachment:{key}" for key in ATTACHMENT_KEYS)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- the five kinds ---


class LinkBody(_Strict):
    title: LinkTitle
    url: LinkUrl
    description: LinkDescription | None = None
    picture: ImageSource | None = None


class MiniProgramBody(_Strict):
    appid: AppId
    page: Title
    title: CardTitle
    cover: ImageSource


class ImageSpec(_Strict):
    image: ImageSource


class LinkSpec(_Strict):
    link: LinkBody


class MiniProgramSpec(_Strict):
    miniprogram: MiniProgramBody


class VideoSpec(_Strict):
    video: VideoSource


class FileSpec(_Strict):
    file: FileSource


_SPEC_KINDS: dict[type[_Strict], Kind] = {
    ImageSpec: Kind.IMAGE,
    LinkSpec: Kind.LINK,
    MiniProgramSpec: Kind.MINIPROGRAM,
    VideoSpec: Kind.VIDEO,
    FileSpec: Kind.FILE,
}


def _attachment_kind(value: Any) -> str | None:
    if isinstance(value, _Strict) and type(value) in _SPEC_KINDS:
        return f"attachment:{_SPEC_KINDS[type(value)]}"
    if not isinstance(value, dict):
        return None
    present = [key for key in ATTACHMENT_KEYS if key in value]
    return f"attachment:{present[0]}" if len(present) == 1 else None


AttachmentSpec = Annotated[
    Annotated[ImageSpec, Tag("attachment:image")]
    | Annotated[LinkSpec, Tag("attachment:link")]
    | Annotated[MiniProgramSpec, Tag("attachment:miniprogram")]
    | Annotated[VideoSpec, Tag("attachment:video")]
    | Annotated[FileSpec, Tag("attachment:file")],
    Discriminator(
        _attachment_kind,
        custom_error_type="bad_attachment",
        custom_error_message=f"an attachment needs exactly one of: {', '.join(ATTACHMENT_KEYS)}",
    ),
]
Attachments = Annotated[list[AttachmentSpec], Field(max_length=content.MAX_ATTACHMENTS)]


# --- compiled: rendered for each delivery ---


@dataclass(frozen=True, slots=True)
class CompiledMedia:
    """A file of the playbooks folder (``path``), or a URL template."""

    path: str | None = None
    url: Template | None = None

    def render(self, context: Mapping[str, Any]) -> content.Media:
        if self.url is not None:
            return content.Media(url=self.url.render(context))
        return content.Media(path=self.path)


@dataclass(frozen=True, slots=True)
class CompiledAttachment:
    """One attachment, its templates compiled. ``render`` raises TemplateRuntimeError."""

    kind: Kind
    media: CompiledMedia | None = None  # image, video, file; a link's picture; a card's cover
    title: Template | None = None
    url: Template | None = None
    description: Template | None = None
    page: Template | None = None
    appid: str | None = None

    def render(self, context: Mapping[str, Any]) -> content.Attachment:
        def text(template: Template | None) -> str:
            assert template is not None
            return template.render(context)

        media = self.media.render(context) if self.media is not None else None
        match self.kind:
            case Kind.IMAGE | Kind.VIDEO | Kind.FILE:
                assert media is not None
                return _MEDIA_TYPES[self.kind](media)
            case Kind.LINK:
                description = self.description.render(context) if self.description else None
                return content.Link(
                    title=text(self.title),
                    url=text(self.url),
                    description=description,
                    picture=media,
                )
            case Kind.MINIPROGRAM:
                assert media is not None
                assert self.appid is not None
                return content.MiniProgram(
                    appid=self.appid, page=text(self.page), title=text(self.title), cover=media
                )
            case _:
                assert_never(self.kind)


_MEDIA_TYPES: dict[Kind, type[content.Image | content.Video | content.File]] = {
    Kind.IMAGE: content.Image,
    Kind.VIDEO: content.Video,
    Kind.FILE: content.File,
}


def compile_attachments(specs: Sequence[AttachmentSpec]) -> tuple[CompiledAttachment, ...]:
    """The validated ``attachments`` of a send step, compiled (templates come from the cache
    that validation filled)."""
    return tuple(_compile(spec) for spec in specs)


def _compile(spec: AttachmentSpec) -> CompiledAttachment:
    match spec:
        case ImageSpec(image=source):
            return CompiledAttachment(Kind.IMAGE, media=_media(source))
        case VideoSpec(video=source):
            return CompiledAttachment(Kind.VIDEO, media=_media(source))
        case FileSpec(file=source):
            return CompiledAttachment(Kind.FILE, media=_media(source))
        case LinkSpec(link=link):
            return CompiledAttachment(
                Kind.LINK,
                media=_media(link.picture) if link.picture is not None else None,
                title=compile_template(link.title),
                url=compile_template(link.url),
                description=compile_template(link.description) if link.description else None,
            )
        case MiniProgramSpec(miniprogram=card):
            return CompiledAttachment(
                Kind.MINIPROGRAM,
                media=_media(card.cover),
                title=compile_template(card.title),
                page=compile_template(card.page),
                appid=card.appid,
            )
        case _:
            assert_never(spec)


def _media(source: str) -> CompiledMedia:
    if is_template(source) or "://" in source:
        return CompiledMedia(url=compile_template(source))
    return CompiledMedia(path=source)


# --- what editors show (see ``smr.playbooks.schema_docs``) ---

_MEDIA = (
    "A file in the playbooks folder (media/poster.png) or an https URL. "
    "剧本目录下的文件或 https 链接。"
)

MODEL_DOCS: dict[str, tuple[str, str]] = {
    "ImageSpec": ("Image · 图片", "A picture (jpg, png; ≤10 MB). 图片。"),
    "LinkSpec": ("Link · 图文链接", "A link card. 链接卡片。"),
    "LinkBody": (
        "Link card · 链接卡片",
        "Title, URL, description and picture. 标题、网址、描述、封面。",
    ),
    "MiniProgramSpec": ("Mini program · 小程序", "A mini-program card. 小程序卡片。"),
    "MiniProgramBody": (
        "Mini-program card · 小程序卡片",
        "appid, page, title and cover. 小程序信息。",
    ),
    "VideoSpec": ("Video · 视频", "An mp4 video (≤10 MB). 视频。"),
    "FileSpec": ("File · 文件", "A file (≤20 MB). 文件。"),
}

FIELD_DOCS: dict[str, dict[str, tuple[str, str]]] = {
    "ImageSpec": {"image": ("Image · 图片", _MEDIA)},
    "LinkSpec": {"link": ("Link · 链接", "The link card. 链接卡片。")},
    "LinkBody": {
        "title": ("Title · 标题", "At most 128 bytes. 最多 128 字节。"),
        "url": ("URL · 网址", "https, at most 2048 bytes. https 网址。"),
        "description": ("Description · 描述", "At most 512 bytes. 最多 512 字节。"),
        "picture": ("Picture · 封面", _MEDIA),
    },
    "MiniProgramSpec": {"miniprogram": ("Mini program · 小程序", "The card. 小程序卡片。")},
    "MiniProgramBody": {
        "appid": ("AppID", "A mini program linked to the corp. 已关联企业的小程序。"),
        "page": ("Page · 页面", "The page path, e.g. /pages/index. 页面路径。"),
        "title": ("Title · 标题", "At most 64 bytes. 最多 64 字节。"),
        "cover": ("Cover · 封面", _MEDIA),
    },
    "VideoSpec": {"video": ("Video · 视频", _MEDIA)},
    "FileSpec": {"file": ("File · 文件", _MEDIA)},
}
