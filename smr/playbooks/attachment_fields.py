"""Field types of ``attachments``: media sources and texts with WeCom's byte limits.

A media source is a file of the playbooks folder or an https URL (see ``smr.playbooks.
attachments`` for the rules). ``check_file`` is also what a sender uses to find the file.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Annotated

from jinja2 import nodes
from pydantic import AfterValidator, Field, ValidationInfo, WithJsonSchema

from smr import content
from smr.content import Kind
from smr.playbooks.expressions import is_template
from smr.playbooks.fields import MINI_APPID_PATTERN, TemplateText
from smr.playbooks.sandbox import ENVIRONMENT

_HTTPS_URL = re.compile(r"^https://[^\s/?#{}%]+(?:[/?#]\S*)?$")
_HTTPS_HOST = re.compile(r"^https://[^\s/?#{}%]+/")


# --- media sources: a path in the playbooks folder, or an https URL ---


def _media_source(kind: Kind) -> AfterValidator:
    def check(value: str, info: ValidationInfo) -> str:
        if is_template(value):
            return _templated_url(value)
        if "://" in value:
            return _static_url(value)
        return _local_path(value, kind, (info.context or {}).get("base_dir"))

    return AfterValidator(check)


def _templated_url(value: str) -> str:
    if not _HTTPS_HOST.match(value):
        raise ValueError(
            "a templated media URL starts with a written-out https://host/ "
            "(only the part after the host may use {{ }})"
        )
    return value


def _static_url(value: str) -> str:
    if not _HTTPS_URL.match(value):
        raise ValueError(f"'{_short(value)}' is not an https URL (http is not allowed)")
    if len(value.encode()) > content.URL_BYTES:
        raise ValueError(f"URL is longer than {content.URL_BYTES} bytes")
    return value


def _local_path(value: str, kind: Kind, base_dir: Path | None) -> str:
    path = PurePosixPath(value)
    if not value.strip() or "\\" in value or path.is_absolute() or value.startswith("~"):
        raise ValueError(f"'{_short(value)}': write a path relative to the playbooks folder")
    if ".." in path.parts:
        raise ValueError(f"'{_short(value)}' leaves the playbooks folder ('..' is not allowed)")
    allowed = content.EXTENSIONS[kind]
    if allowed and path.suffix.lower() not in allowed:
        raise ValueError(f"{kind} takes {', '.join(e[1:] for e in allowed)} files, not '{path}'")
    if base_dir is not None:
        check_file(base_dir, str(path), kind)
    return str(path)


def check_file(base_dir: Path, path: str, kind: Kind) -> Path:
    """The file ``path`` names in ``base_dir``; raises ValueError when it leads out of the
    folder, is missing, or has a size WeCom refuses for ``kind``."""
    root = base_dir.resolve()
    full = (root / path).resolve()
    if not full.is_relative_to(root):
        raise ValueError(f"'{path}' leads out of the playbooks folder (a symlink?)")
    if not full.is_file():
        raise ValueError(f"no file '{path}' in the playbooks folder ({base_dir})")
    size, largest = full.stat().st_size, content.MAX_BYTES[kind]
    if not content.MIN_BYTES <= size <= largest:
        raise ValueError(
            f"'{path}' is {size:,} bytes; WeCom takes {kind} files of "
            f"{content.MIN_BYTES} to {largest:,} bytes"
        )
    return full


def _short(value: str) -> str:
    return value if len(value) <= 80 else value[:79] + "…"


def _source_schema(kind: str, example: str) -> WithJsonSchema:
    return WithJsonSchema(
        {
            "type": "string",
            "description": f"A {kind}: a file in the playbooks folder, or an https URL."
            " 文件（相对 playbooks 目录）或 https 链接。",
            "examples": [example, f"https://cdn.example.com/{example.removeprefix('media/')}"],
        }
    )


ImageSource = Annotated[
    TemplateText, _media_source(Kind.IMAGE), _source_schema("picture", "media/poster.png")
]
VideoSource = Annotated[
    TemplateText, _media_source(Kind.VIDEO), _source_schema("video (mp4)", "media/intro.mp4")
]
FileSource = Annotated[
    TemplateText, _media_source(Kind.FILE), _source_schema("file", "media/manual.pdf")
]


# --- texts with WeCom's byte limits ---


def static_bytes(source: str) -> int:
    """UTF-8 bytes a template writes whatever its values: its text outside any tag or block."""
    tree = ENVIRONMENT.parse(source)
    return sum(
        len(str(node.data).encode())
        for output in tree.body
        if isinstance(output, nodes.Output)
        for node in output.nodes
        if isinstance(node, nodes.TemplateData)
    )


def _at_most(limit: int, what: str) -> AfterValidator:
    def check(value: str) -> str:
        size = static_bytes(value)
        if size > limit:
            raise ValueError(f"{what} is {size} bytes; WeCom takes at most {limit}")
        return value

    return AfterValidator(check)


def _link_url(value: str) -> str:
    if not is_template(value):
        return _static_url(value)
    if value.startswith(("{{", "{%")):
        return value  # a template writes the whole URL: it is checked when sending
    if not value.startswith("https://"):
        raise ValueError(f"'{_short(value)}' is not an https URL (http is not allowed)")
    if static_bytes(value) > content.URL_BYTES:
        raise ValueError(f"URL is longer than {content.URL_BYTES} bytes")
    return value


Title = Annotated[TemplateText, Field(min_length=1)]
LinkTitle = Annotated[Title, _at_most(content.LINK_TITLE_BYTES, "title")]
LinkDescription = Annotated[TemplateText, _at_most(content.LINK_DESCRIPTION_BYTES, "description")]
LinkUrl = Annotated[
    TemplateText,
    AfterValidator(_link_url),
    WithJsonSchema(
        {
            "type": "string",
            "description": "An https URL; {{ … }} inserts a value. https 链接，可用模板。",
            "examples": ["https://shop.example.com/item?c={{ contact.id }}"],
        }
    ),
]
CardTitle = Annotated[Title, _at_most(content.MINIPROGRAM_TITLE_BYTES, "title")]
AppId = Annotated[
    str,
    Field(pattern=MINI_APPID_PATTERN, description="The mini program's AppID (wx…)."),
]
