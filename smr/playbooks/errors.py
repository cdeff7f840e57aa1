"""Load errors that point at a file, a line, a column and a field path.

Pydantic reports where a problem is as a ``loc`` tuple; the composed YAML node tree knows where
each value was written. Walking both together turns one into the other. The model classes tell
which field names were allowed at that place, so a misspelt one gets a suggestion.
"""

import re
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, Tag, ValidationError
from pydantic_core import ErrorDetails

from smr.playbooks.messages import closest, misplaced_key, plain_message
from smr.playbooks.schema import STEP_KEYS, TRIGGER_KEYS, UNION_TAGS
from smr.playbooks.yaml_loader import compose_document

Loc = Sequence[int | str]
Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class PlaybookError:
    file: str
    line: int
    column: int
    path: str
    message: str
    severity: Severity = "error"

    def format(self) -> str:
        label = "warning: " if self.severity == "warning" else ""
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}:{self.line}:{self.column}: {label}{where}{self.message}"


def error_at(
    node: yaml.Node | None, *, file: str, path: str, message: str, severity: Severity = "error"
) -> PlaybookError:
    line, column = (node.start_mark.line + 1, node.start_mark.column + 1) if node else (1, 1)
    return PlaybookError(file, line, column, path, message, severity)


def error_in(text: str, *, file: str, loc: Loc, message: str) -> PlaybookError:
    """An error at ``loc`` of the YAML document ``text`` (at its start when ``loc`` is not
    found), such as a duplicate id found only once every file is read."""
    try:
        root, _ = compose_document(text)
    except (yaml.YAMLError, RecursionError):
        root = None
    node = find_node(root, loc) if root is not None else None
    return error_at(node, file=file, path=format_path(loc), message=message)


def yaml_error(exc: yaml.YAMLError, *, file: str, text: str) -> PlaybookError:
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - text.rfind("\n", 0, exc.position)
        char = exc.character if isinstance(exc.character, str) else chr(exc.character)
        message = f"character U+{ord(char):04X} is not allowed in YAML (is this a text file?)"
        return PlaybookError(file, line, column, "", message)
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    said = [getattr(exc, "context", None), getattr(exc, "problem", None)]
    problem = ", ".join(part for part in said if part) or str(exc)
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    return PlaybookError(file=file, line=line, column=column, path="", message=f"YAML: {problem}")


def validation_errors(
    exc: ValidationError, *, root: yaml.Node, file: str, model: type[BaseModel]
) -> list[PlaybookError]:
    nodes, found = NodeIndex(root), exc.errors()
    meant = _meant_fields(found, model)
    return [
        _from_details(details, nodes=nodes, file=file, model=model)
        for details in found
        if not (details["type"] == "missing" and tuple(details["loc"]) in meant)
    ]


def _meant_fields(found: Sequence[ErrorDetails], model: type[BaseModel]) -> set[Loc]:
    """Missing fields that an unknown sibling is a misspelling of: one error says it all."""
    meant: set[Loc] = set()
    for details in found:
        if details["type"] == "extra_forbidden":
            *parent, name = details["loc"]
            match = closest(str(name), field_names(model, parent))
            if match is not None:
                meant.add((*parent, match))
    return meant


def find_node(root: yaml.Node, loc: Loc, *, want_key: bool = False) -> yaml.Node:
    return NodeIndex(root).find(loc, want_key=want_key)


class NodeIndex:
    """Finds the node a ``loc`` points at; each mapping's keys are indexed once."""

    def __init__(self, root: yaml.Node) -> None:
        self.root = root
        self._keys: dict[yaml.Node, dict[str, tuple[yaml.Node, yaml.Node]]] = {}

    def find(self, loc: Loc, *, want_key: bool = False) -> yaml.Node:
        """The deepest node reached by ``loc``; union tags are skipped."""
        node = self.root
        for index, part in enumerate(loc):
            child = self._child(node, part, want_key=want_key and index == len(loc) - 1)
            if child is not None:
                node = child
            elif part not in UNION_TAGS:
                break
        return node

    def _child(self, node: yaml.Node, part: int | str, *, want_key: bool) -> yaml.Node | None:
        if isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            return node.value[part] if 0 <= part < len(node.value) else None
        if not isinstance(node, yaml.MappingNode):
            return None
        if node not in self._keys:
            # A repeated key keeps its last value, as in the loaded data.
            self._keys[node] = {
                str(key.value): (key, value)
                for key, value in node.value
                if isinstance(key, yaml.ScalarNode)
            }
        pair = self._keys[node].get(str(part))
        return None if pair is None else pair[0 if want_key else 1]


_PATH_PART = re.compile(r"(\w+)|\[(\d+)\]")


def loc_of(step_path: str) -> Loc:
    """An instruction's ``step_path`` (``steps[2].then[0]``) as the ``loc`` it came from."""
    return tuple(int(i) if i else name for name, i in _PATH_PART.findall(step_path))


def format_path(loc: Loc) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part not in UNION_TAGS:
            path += f".{part}" if path else str(part)
    return path


def field_names(model: type[BaseModel], loc: Loc) -> tuple[str, ...]:
    """The YAML spellings of the fields allowed in the mapping at ``loc``."""
    annotation: Any = model
    for part in loc:
        annotation = _inner(annotation, part)
    target = next(_models(annotation), None)
    if target is None:
        return ()
    return tuple(info.alias or name for name, info in target.model_fields.items())


def _models(annotation: Any) -> Iterator[type[BaseModel]]:
    origin = get_origin(annotation)
    if origin is Annotated:
        yield from _models(get_args(annotation)[0])
    elif origin in (Union, types.UnionType):
        for member in get_args(annotation):
            yield from _models(member)
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation


def _inner(annotation: Any, part: int | str) -> Any:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _inner(get_args(annotation)[0], part)
    if origin in (Union, types.UnionType):
        return _member(get_args(annotation), part)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        fields = annotation.model_fields
        return next((f.annotation for n, f in fields.items() if part in (n, f.alias)), None)
    if origin is list and isinstance(part, int):
        return get_args(annotation)[0]
    if origin is dict and isinstance(part, str):
        return get_args(annotation)[1]
    return None


def _member(members: tuple[Any, ...], part: int | str) -> Any:
    """A tagged union member by its tag, else the first member that has ``part``."""
    for member in members:
        tags = [m.tag for m in getattr(member, "__metadata__", ()) if isinstance(m, Tag)]
        if part in tags:
            return member
    found = (_inner(member, part) for member in members if member is not type(None))
    return next((inner for inner in found if inner is not None), None)


def _choices(details: ErrorDetails, model: type[BaseModel]) -> tuple[str, ...]:
    kind = details["type"]
    if kind == "extra_forbidden":
        return field_names(model, details["loc"][:-1])
    return {"bad_step": STEP_KEYS, "bad_trigger": TRIGGER_KEYS}.get(kind, ())


def _from_details(
    details: ErrorDetails, *, nodes: NodeIndex, file: str, model: type[BaseModel]
) -> PlaybookError:
    loc, choices = details["loc"], _choices(details, model)
    named = misplaced_key(details["type"], details["input"], choices)
    if named is not None:
        node = nodes.find((*loc, named), want_key=True)
    else:
        node = nodes.find(loc, want_key=details["type"] == "extra_forbidden")
    line, column = _template_position(details, node) or _start(node)
    message = plain_message(details, choices=choices)
    return PlaybookError(file, line, column, format_path(loc), message)


def _start(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _template_position(details: ErrorDetails, node: yaml.Node) -> tuple[int, int] | None:
    """Where a template's own bad line is, when the template is a block scalar (| or >)."""
    lineno = int((details.get("ctx") or {}).get("lineno", 0))
    start, end = node.start_mark, node.end_mark
    if not lineno or not isinstance(node, yaml.ScalarNode) or node.style not in ("|", ">"):
        return None
    if not isinstance(start.buffer, str):
        return None
    # The block's first line holds the | or > indicator; the text starts on the next one.
    lines = start.buffer[start.pointer : end.pointer].split("\n")[1:]
    offset = _block_offset(lines, lineno=lineno, folded=node.style == ">")
    text = lines[offset] if offset < len(lines) else ""
    return start.line + 2 + offset, len(text) - len(text.lstrip()) + 1


def _block_offset(lines: Sequence[str], *, lineno: int, folded: bool) -> int:
    if not folded:
        return lineno - 1
    # Folding joins adjacent lines with a space; each empty line is one line break.
    breaks = 0
    for offset, text in enumerate(lines):
        if not text.strip():
            breaks += 1
        elif breaks >= lineno - 1:
            return offset
    return 0
