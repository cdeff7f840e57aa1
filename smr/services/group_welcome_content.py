"""The content of each declared group welcome template, rendered once with the policies' vars,
and the hash it is compared by: its text, its attachment and the bytes of the media files it
names (a picture replaced under the same name changes the hash, so the template is edited)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smr import content
from smr.content import Kind, Media
from smr.playbooks.attachment_fields import check_file
from smr.playbooks.expressions import TemplateRuntimeError
from smr.playbooks.group_welcome import GroupWelcome, WelcomeContent, compile_welcome

#: The declared templates by playbook id, the policies' vars and the playbooks folder, as they
#: are now (read at the start of each pass).
Declared = Callable[[], tuple[Mapping[str, GroupWelcome], Mapping[str, Any], Path]]
ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class Rendered:
    """A declared template's content and hash, or why it cannot be made (``error``)."""

    content: WelcomeContent | None = None
    content_hash: str | None = None
    error: str | None = None


async def render_all(
    specs: Mapping[str, GroupWelcome], variables: Mapping[str, Any], root: Path
) -> dict[str, Rendered]:
    """Each template rendered and hashed (media files are read off the event loop)."""
    return {
        playbook_id: await asyncio.to_thread(render_one, spec, variables, root)
        for playbook_id, spec in specs.items()
    }


def render_one(spec: GroupWelcome, variables: Mapping[str, Any], root: Path) -> Rendered:
    try:
        made = compile_welcome(spec).render(variables)
        digest = content_hash(made, root)
    except (TemplateRuntimeError, ValueError) as exc:
        return Rendered(error=str(exc)[:ERROR_CHARS])
    return Rendered(made, digest)


def content_hash(made: WelcomeContent, root: Path) -> str:
    """SHA-256 over the content's JSON and each local media file's bytes. Raises ValueError
    for a file that is missing or unfit (see ``check_file``)."""
    digest = hashlib.sha256(json.dumps(made.as_json(), sort_keys=True).encode())
    for media, kind in _local_media(made.attachment):
        assert media.path is not None
        try:
            digest.update(check_file(root, media.path, kind).read_bytes())
        except OSError as exc:
            raise ValueError(f"media {media.path}: {exc.strerror or exc}") from None
    return digest.hexdigest()


def _local_media(item: content.Attachment | None) -> Iterator[tuple[Media, Kind]]:
    found: Media | None = None
    match item:
        case content.Image() | content.Video() | content.File():
            found = item.media
        case content.Link():
            found = item.picture
        case content.MiniProgram():
            found = item.cover
    if item is not None and found is not None and found.path is not None:
        kind = item.kind if item.kind in (Kind.VIDEO, Kind.FILE) else Kind.IMAGE
        yield found, kind
