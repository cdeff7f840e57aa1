"""The channel codes folder → validated codes, with errors at file:line:column like playbooks.

The codes live in ``<playbooks>/channel_codes/*.yaml``: a folder of their own, so the playbook
loader (which reads only the playbooks folder's own ``*.yaml``) never takes them for playbooks.
No folder means SMR does not manage channel codes at all (nothing is created, nothing deleted);
a folder whose files declare no code means every code SMR made is deleted from WeCom.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError

from smr.channel_codes.schema import ChannelCodesFile, ChannelCodeSpec
from smr.playbooks.errors import PlaybookError, error_at, error_in, validation_errors, yaml_error
from smr.playbooks.loader import read_file, yaml_files
from smr.playbooks.messages import describe
from smr.playbooks.yaml_loader import compose_document

FOLDER = "channel_codes"


@dataclass(frozen=True)
class ChannelCode:
    """A declared code and the file it is declared in."""

    spec: ChannelCodeSpec
    file: str

    @property
    def state(self) -> str:
        return self.spec.state


@dataclass(frozen=True)
class Declared:
    """Every declared code by state; ``managed`` is False when there is no folder."""

    codes: Mapping[str, ChannelCode] = field(default_factory=dict)
    managed: bool = False


def code_files(playbooks_dir: Path) -> list[Path]:
    """The channel code files of a playbooks folder, in name order ([] when there are none)."""
    return yaml_files(playbooks_dir / FOLDER)


def load_text(text: str, *, filename: str) -> tuple[list[ChannelCode] | None, list[PlaybookError]]:
    """One file's codes, or ``(None, errors)``; never raises."""
    try:
        root, data = compose_document(text)
    except yaml.YAMLError as exc:
        return None, [yaml_error(exc, file=filename, text=text)]
    except RecursionError:
        return None, [PlaybookError(filename, 1, 1, "", "the YAML is nested too deeply")]
    if root is None:
        return [], []  # an empty file declares no code
    if not isinstance(data, dict):
        message = f"expected a mapping with 'codes:', got {describe(data)}"
        return None, [error_at(root, file=filename, path="", message=message)]
    try:
        parsed = ChannelCodesFile.model_validate(data)
    except ValidationError as exc:
        found = validation_errors(exc, root=root, file=filename, model=ChannelCodesFile)
        return None, sorted(found, key=lambda e: (e.line, e.column))
    return [ChannelCode(spec, filename) for spec in parsed.codes], []


def load_folder(playbooks_dir: Path) -> tuple[Declared, set[str], list[PlaybookError]]:
    """The codes of every file, the files that did not load, and every error. A state declared
    twice is an error at the second one (which is left out)."""
    if not (playbooks_dir / FOLDER).is_dir():
        return Declared(), set(), []
    codes: dict[str, ChannelCode] = {}
    broken: set[str] = set()
    errors: list[PlaybookError] = []
    for file in code_files(playbooks_dir):
        found, file_errors = _load_file(file)
        errors.extend(file_errors)
        if found is None:
            broken.add(str(file))
            continue
        for index, code in enumerate(found):
            if code.state in codes:
                errors.append(_duplicate(code, index, first=codes[code.state]))
            else:
                codes[code.state] = code
    return Declared(codes, managed=True), broken, errors


def _load_file(file: Path) -> tuple[list[ChannelCode] | None, list[PlaybookError]]:
    text, errors = read_file(file)
    return (None, errors) if text is None else load_text(text, filename=str(file))


def _duplicate(code: ChannelCode, index: int, *, first: ChannelCode) -> PlaybookError:
    message = f"duplicate channel code state '{code.state}' (already declared in {first.file})"
    text = Path(code.file).read_text(encoding="utf-8")
    return error_in(text, file=code.file, loc=("codes", index, "state"), message=message)


class ChannelCodes:
    """The declared codes the service acts on, replaced whole by each reload.

    A file that turns invalid keeps its codes' last good declaration (a typo never deletes a
    printed QR code from WeCom); its errors are reported like a playbook's.
    """

    def __init__(self) -> None:
        self.current = Declared()

    def reload(self, playbooks_dir: Path) -> list[PlaybookError]:
        fresh, broken, errors = load_folder(playbooks_dir)
        kept = {
            state: code
            for state, code in self.current.codes.items()
            if code.file in broken and state not in fresh.codes
        }
        self.current = Declared({**fresh.codes, **kept}, managed=fresh.managed)
        return errors


@dataclass(frozen=True)
class CheckResult:
    codes: int
    errors: list[PlaybookError]


def check_path(path: Path) -> CheckResult | None:
    """What ``smr playbooks check`` reports for channel codes: those of a playbooks folder, or
    of one code file (in a ``channel_codes`` folder); None for a playbook file, or a folder
    without channel codes."""
    if path.is_dir():
        declared, _, errors = load_folder(path)
        return CheckResult(len(declared.codes), errors) if declared.managed else None
    if path.parent.name != FOLDER:
        return None
    found, errors = _load_file(path)
    return CheckResult(len(found or []), errors)
