"""The segments folder → compiled segments, with errors at file:line:column like playbooks.

Segments live in ``<playbooks>/segments/*.yaml``, one per file: a folder of their own, so the
playbook loader (which reads only the playbooks folder's own ``*.yaml``) never takes them for
playbooks. A file that turns invalid keeps its segment's last good definition.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from smr.playbooks.context import ContactView, EventView, build_context
from smr.playbooks.errors import PlaybookError, error_in, validation_errors
from smr.playbooks.expressions import Expression, TemplateRuntimeError, compile_expression
from smr.playbooks.loader import parse_mapping, read_file, yaml_files
from smr.segments.schema import SegmentSpec

FOLDER = "segments"


@dataclass(frozen=True)
class Segment:
    """A segment ready to evaluate; ``version`` is a content hash of its file."""

    spec: SegmentSpec
    file: str
    version: str
    condition: Expression | None
    #: The file's text, as loaded.
    source: str

    @property
    def id(self) -> str:
        return self.spec.id

    def holds(self, contact: ContactView, context: dict[str, Any]) -> bool:
        """Whether ``contact`` is in the segment (``context``: ``segment_context``'s). A
        condition that fails to evaluate keeps the contact out."""
        tags = set(contact.tags)
        if self.spec.tags_any and not tags.intersection(self.spec.tags_any):
            return False
        if tags.intersection(self.spec.tags_none):
            return False
        if self.condition is None:
            return True
        try:
            return bool(self.condition.evaluate(context))
        except TemplateRuntimeError:
            return False


def segment_context(contact: ContactView, *, now: Any, vars: dict[str, Any]) -> dict[str, Any]:
    """The names a segment's condition reads: ``contact``, ``now`` and ``vars`` (``event`` and
    ``trigger`` are an empty ``segment`` event, ``run`` is none)."""
    nothing = EventView(id="segment", type="segment", occurred_at=now, data={})
    return build_context(
        contact=contact, event=nothing, trigger=nothing, run=None, now=now, vars=vars
    )


def segment_files(playbooks_dir: Path) -> list[Path]:
    """The segment files of a playbooks folder, in name order ([] when there are none)."""
    return yaml_files(playbooks_dir / FOLDER)


def load_text(text: str, *, filename: str) -> tuple[Segment | None, list[PlaybookError]]:
    """One file's segment, or ``(None, errors)``; never raises."""
    root, data, errors = parse_mapping(text, filename=filename)
    if root is None:
        return None, errors
    try:
        spec = SegmentSpec.model_validate(data)
    except ValidationError as exc:
        found = validation_errors(exc, root=root, file=filename, model=SegmentSpec)
        return None, sorted(found, key=lambda e: (e.line, e.column))
    version = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    condition = compile_expression(spec.condition) if spec.condition else None
    return Segment(spec, filename, version, condition, text), []


def load_folder(playbooks_dir: Path) -> tuple[dict[str, Segment], set[str], list[PlaybookError]]:
    """The segments of every file by id, the files that did not load, and every error. An id
    defined twice is an error at the second file (which is left out)."""
    segments: dict[str, Segment] = {}
    broken: set[str] = set()
    errors: list[PlaybookError] = []
    for file in segment_files(playbooks_dir):
        found, file_errors = _load_file(file)
        errors.extend(file_errors)
        if found is None:
            broken.add(str(file))
        elif found.id in segments:
            errors.append(_duplicate(found, first=segments[found.id]))
        else:
            segments[found.id] = found
    return segments, broken, errors


def _load_file(file: Path) -> tuple[Segment | None, list[PlaybookError]]:
    text, errors = read_file(file)
    return (None, errors) if text is None else load_text(text, filename=str(file))


def _duplicate(segment: Segment, *, first: Segment) -> PlaybookError:
    message = f"duplicate segment id '{segment.id}' (already defined in {first.file})"
    return error_in(segment.source, file=segment.file, loc=("id",), message=message)


@dataclass
class Segments:
    """The segments the service acts on, replaced whole by each reload; a file that turns
    invalid keeps its segment's last good definition (its errors are reported)."""

    current: dict[str, Segment] = field(default_factory=dict)

    def reload(self, playbooks_dir: Path) -> list[PlaybookError]:
        fresh, broken, errors = load_folder(playbooks_dir)
        kept = {
            sid: segment
            for sid, segment in self.current.items()
            if segment.file in broken and sid not in fresh
        }
        self.current = {**fresh, **kept}
        return errors


def check_path(path: Path) -> tuple[int, list[PlaybookError]] | None:
    """What ``smr playbooks check`` reports for segments: those of a playbooks folder, or of
    one segment file (in a ``segments`` folder); None for anything else."""
    if path.is_dir():
        if not (path / FOLDER).is_dir():
            return None
        segments, _, errors = load_folder(path)
        return len(segments), errors
    if path.parent.name != FOLDER:
        return None
    found, errors = _load_file(path)
    return (1 if found else 0), errors
