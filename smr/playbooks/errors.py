"""Load errors that point at a file, a line, a column and a field path.

Pydantic reports where a problem is as a ``loc`` tuple; the composed YAML node tree knows where
each value was written. Walking both together turns one into the other.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from smr.playbooks.schema import UNION_TAGS

Loc = Sequence[int | str]


@dataclass(frozen=True)
class PlaybookError:
    file: str
    line: int
    column: int
    path: str
    message: str
    severity: Literal["error", "warning"] = "error"

    def format(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}:{self.line}:{self.column}: {where}{self.message}"


def error_at(node: yaml.Node | None, *, file: str, path: str, message: str) -> PlaybookError:
    line, column = (node.start_mark.line + 1, node.start_mark.column + 1) if node else (1, 1)
    return PlaybookError(file=file, line=line, column=column, path=path, message=message)


def yaml_error(exc: yaml.YAMLError, *, file: str) -> PlaybookError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    return PlaybookError(file=file, line=line, column=column, path="", message=f"YAML: {problem}")


def validation_errors(exc: ValidationError, *, root: yaml.Node, file: str) -> list[PlaybookError]:
    return [_from_details(details, root=root, file=file) for details in exc.errors()]


def find_node(root: yaml.Node, loc: Loc, *, want_key: bool = False) -> yaml.Node:
    """Return the deepest node reached by ``loc``; union tags are skipped."""
    node = root
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        child = _child(node, part, want_key=want_key and last)
        if child is not None:
            node = child
        elif part not in UNION_TAGS:
            break
    return node


def format_path(loc: Loc) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part not in UNION_TAGS:
            path += f".{part}" if path else str(part)
    return path


def _child(node: yaml.Node, part: int | str, *, want_key: bool) -> yaml.Node | None:
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int):
        return node.value[part] if 0 <= part < len(node.value) else None
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                return key if want_key else value
    return None


def _from_details(details: ErrorDetails, *, root: yaml.Node, file: str) -> PlaybookError:
    loc = details["loc"]
    node = find_node(root, loc, want_key=details["type"] == "extra_forbidden")
    line = node.start_mark.line + 1 + _template_line_offset(details, node)
    return PlaybookError(
        file=file,
        line=line,
        column=node.start_mark.column + 1,
        path=format_path(loc),
        message=_message(details),
    )


def _template_line_offset(details: ErrorDetails, node: yaml.Node) -> int:
    # In a block scalar (| or >) the text starts on the line after the indicator.
    lineno = int((details.get("ctx") or {}).get("lineno", 0))
    if not lineno or not isinstance(node, yaml.ScalarNode) or node.style not in ("|", ">"):
        return 0
    return lineno


def _message(details: ErrorDetails) -> str:
    kind = details["type"]
    ctx: dict[str, Any] = dict(details.get("ctx") or {})
    if kind == "value_error":
        return str(ctx["error"])
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "missing required field"
    if kind in ("bad_step", "bad_trigger") and isinstance(details["input"], dict):
        found = ", ".join(map(str, details["input"])) or "nothing"
        return f"{details['msg']} (found: {found})"
    return details["msg"]
