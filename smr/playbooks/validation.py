"""One file's content checked the way the loader checks it, before it is saved to the folder."""

from collections.abc import Collection, Mapping
from pathlib import PurePath
from typing import Literal

from smr.playbooks.errors import PlaybookError
from smr.playbooks.loader import (
    POLICIES_FILES,
    LoadedPlaybook,
    decode,
    duplicate_error,
    load_policies_text,
    load_text,
)
from smr.segments.loader import FOLDER as SEGMENTS_FOLDER
from smr.segments.loader import load_text as load_segment

FileKind = Literal["playbook", "policies", "segment"]


def kind_of(filename: str) -> FileKind:
    path = PurePath(filename)
    if path.name in POLICIES_FILES:
        return "policies"
    return "segment" if path.parent.name == SEGMENTS_FOLDER else "playbook"


def check_source(
    data: bytes,
    *,
    filename: str,
    kind: FileKind,
    channels: Collection[str],
    loaded: Mapping[str, LoadedPlaybook],
) -> list[PlaybookError]:
    """Every error and warning in ``data``; never raises.

    A playbook whose id a *different* file in ``loaded`` already has is a duplicate; the same
    file name means the posted text is a new version of that file.
    """
    text, errors = decode(data, filename=filename)
    if text is None:
        return errors
    if kind == "policies":
        return load_policies_text(text, filename=filename, channels=channels)[1]
    if kind == "segment":
        return load_segment(text, filename=filename)[1]
    playbook, errors = load_text(text, filename=filename, channels=channels)
    first = loaded.get(playbook.id) if playbook is not None else None
    if playbook is None or first is None or PurePath(first.file).name == PurePath(filename).name:
        return errors
    return [*errors, duplicate_error(playbook, first_file=first.file)]
