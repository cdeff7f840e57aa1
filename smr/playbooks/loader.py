"""YAML files → validated, compiled playbooks, with errors that point at file:line:column.

A broken file never stops the others from loading: it is skipped and its errors reported.
"""

import hashlib
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from smr.channels import capabilities_of
from smr.playbooks.errors import (
    Loc,
    NodeIndex,
    PlaybookError,
    error_at,
    error_in,
    find_node,
    format_path,
    validation_errors,
    yaml_error,
)
from smr.playbooks.expressions import Expression, compile_expression
from smr.playbooks.group_welcome_check import group_welcome_warnings
from smr.playbooks.messages import custom_event_message, describe, did_you_mean
from smr.playbooks.policies import STAFF_CHANNEL, Policies
from smr.playbooks.program import Program, compile_program
from smr.playbooks.reach import reach_warnings
from smr.playbooks.schema import EventTrigger, ExitRule, Goal, IfStep, Playbook, ScheduleTrigger
from smr.playbooks.steps.emit import EmitStep
from smr.playbooks.yaml_loader import compose_document
from smr.subjects import ContactKind

POLICIES_FILES = ("policies.yaml", "policies.yml")
#: Far more YAML nodes than any playbook has; aliases (*name) count each time they are used.
MAX_NODES = 100_000


@dataclass(frozen=True)
class CompiledExit:
    event: str
    condition: Expression | None


@dataclass(frozen=True)
class CompiledGoal:
    event: str
    within: timedelta
    condition: Expression | None
    #: Counted from the run's first sent message (else from its start).
    from_send: bool


@dataclass(frozen=True)
class LoadedPlaybook:
    """A playbook ready for the engine; ``version`` is a content hash of its file."""

    spec: Playbook
    file: str
    version: str
    source: str
    program: Program
    #: The event types that start a run (none for a schedule).
    trigger_events: frozenset[str]
    condition: Expression | None
    keywords: tuple[str, ...]
    exits: tuple[CompiledExit, ...]
    listens_to: frozenset[str]
    #: ``trigger.each``: the items a start makes one run each for.
    each: Expression | None = None
    #: ``trigger.segment``: the segment whose entries (or exits) start a run.
    segment: str | None = None
    goal: CompiledGoal | None = None

    def triggered(self, event_type: str, data: Mapping[str, Any]) -> bool:
        """Whether an event of this type and data may start a run (its segment's, if any)."""
        if event_type not in self.trigger_events:
            return False
        return self.segment is None or data.get("segment") == self.segment

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def trigger_event(self) -> str | None:
        """The event type that starts a run, when the trigger names exactly one."""
        return next(iter(self.trigger_events)) if len(self.trigger_events) == 1 else None


@dataclass(frozen=True)
class LoadResult:
    playbooks: dict[str, LoadedPlaybook] = field(default_factory=dict)
    policies: Policies = field(default_factory=Policies)
    errors: list[PlaybookError] = field(default_factory=list)


def load_text(
    text: str, *, filename: str, channels: Collection[str], base_dir: Path | None = None
) -> tuple[LoadedPlaybook | None, list[PlaybookError]]:
    """Validate and compile one playbook; bad input gives ``(None, errors)``, never an exception.

    Warnings (severity "warning", such as a custom event type) come with a loaded playbook too.
    With ``base_dir`` (the playbooks folder), the media files it names must be there.
    """
    root, data, errors = parse_mapping(text, filename=filename)
    if root is None:
        return None, errors
    nodes = NodeIndex(root)
    warnings = _event_type_warnings(data, nodes, file=filename)
    try:
        context = {"channels": frozenset(channels), "base_dir": base_dir}
        spec = Playbook.model_validate(data, context=context)
    except ValidationError as exc:
        found = validation_errors(exc, root=root, file=filename, model=Playbook)
        return None, _in_file_order(found + warnings)
    loaded = _compile(spec, text=text, filename=filename)
    warnings += reach_warnings(
        loaded.program,
        trigger_events=loaded.trigger_events,
        subject=_subject(spec.trigger),
        channels=capabilities_of(channels),
        nodes=nodes,
        file=filename,
    )
    warnings += group_welcome_warnings(
        spec,
        loaded.program,
        trigger_event=loaded.trigger_event,
        channels=capabilities_of(channels),
        nodes=nodes,
        file=filename,
    )
    return loaded, _in_file_order(warnings)


def load_policies_text(
    text: str, *, filename: str, channels: Collection[str] | None = None
) -> tuple[Policies | None, list[PlaybookError]]:
    """Validate ``policies.yaml``; an empty file means the defaults. With ``channels``, a rate
    limit on a channel that is not one of them (nor ``staff``) is a warning: it limits nothing."""
    root, data, errors = parse_mapping(text, filename=filename, allow_empty=True)
    if root is None:
        return (Policies(), []) if not errors else (None, errors)
    try:
        policies = Policies.model_validate(data)
    except ValidationError as exc:
        found = validation_errors(exc, root=root, file=filename, model=Policies)
        return None, _in_file_order(found)
    if channels is None:
        return policies, []
    return policies, _rate_limit_warnings(policies, root, filename, [*channels, STAFF_CHANNEL])


def _rate_limit_warnings(
    policies: Policies, root: yaml.Node, filename: str, known: list[str]
) -> list[PlaybookError]:
    warnings = []
    for index, limit in enumerate(policies.rate_limits):
        if limit.channel in known:
            continue
        loc = ("rate_limits", index, "channel")
        message = (
            f"no channel '{limit.channel}'{did_you_mean(limit.channel, sorted(known))};"
            " this limit applies to no message"
        )
        node = find_node(root, loc)
        path = f"rate_limits[{index}].channel"
        warnings.append(
            error_at(node, file=filename, path=path, message=message, severity="warning")
        )
    return warnings


def _in_file_order(errors: list[PlaybookError]) -> list[PlaybookError]:
    return sorted(errors, key=lambda e: (e.line, e.column))


def decode(data: bytes, *, filename: str) -> tuple[str | None, list[PlaybookError]]:
    """UTF-8 text, or an error saying where the first byte that is not UTF-8 is."""
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        message = (
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}):"
            " save the file as UTF-8"
        )
        return None, [PlaybookError(filename, line, column, "", message)]


def duplicate_error(loaded: LoadedPlaybook, *, first_file: str) -> PlaybookError:
    """``loaded`` uses an id that the playbook in ``first_file`` already has."""
    message = f"duplicate playbook id '{loaded.id}' (already defined in {first_file})"
    return error_in(loaded.source, file=loaded.file, loc=("id",), message=message)


def load_directory(path: Path, *, channels: Collection[str]) -> LoadResult:
    """Load every ``*.yaml``/``*.yml`` in ``path`` (not recursive) and its ``policies.yaml``.

    Files are read in name order, so of two files with the same id the later name is reported.
    Invalid policies are reported and replaced by the defaults.
    """
    if not path.is_dir():
        message = f"playbook directory {path} does not exist"
        return LoadResult(errors=[PlaybookError(str(path), 1, 1, "", message)])
    errors: list[PlaybookError] = []
    result = LoadResult(policies=_load_policies(path, errors, channels), errors=errors)
    check_vars = not errors  # against the defaults that stand in for broken policies, no
    for file in sorted(path.iterdir()):
        if file.suffix in (".yaml", ".yml") and file.name not in POLICIES_FILES and file.is_file():
            _add_playbook(file, result, channels=channels, check_vars=check_vars)
    # An event type the folder's own emit steps post is not a custom one to warn about.
    posted = _posted_places(result.playbooks.values())
    result.errors[:] = [
        e for e in result.errors if e.severity != "warning" or (e.file, e.path) not in posted
    ]
    return result


def _emitted_types(playbooks: Iterable[LoadedPlaybook]) -> set[str]:
    """The event types the folder's own ``emit`` steps post."""
    found: set[str] = set()
    for playbook in playbooks:
        steps = list(playbook.spec.steps)
        while steps:
            step = steps.pop()
            if isinstance(step, EmitStep):
                found.add(step.emit.type)
            elif isinstance(step, IfStep):
                steps += [*step.then, *step.otherwise]
    return found


def _posted_places(playbooks: Collection[LoadedPlaybook]) -> set[tuple[str, str]]:
    """(file, path) of each event type a trigger or exit rule names (where
    ``_event_type_warnings`` looks) that an ``emit`` step of the folder posts."""
    posted = _emitted_types(playbooks)
    places = set()
    for playbook in playbooks:
        trigger = playbook.spec.trigger
        if (
            isinstance(trigger, EventTrigger)
            and isinstance(trigger.event, str)
            and trigger.event in posted
        ):
            places.add((playbook.file, "trigger.event"))
        for index, rule in enumerate(playbook.spec.exit_on):
            if rule.event in posted:
                places.add((playbook.file, f"exit_on[{index}].event"))
    return places


def load_path(path: Path, *, channels: Collection[str], policies_dir: Path) -> LoadResult:
    """A folder of playbooks with its policies, or one playbook file with the policies next to
    it (else those in ``policies_dir``)."""
    if path.is_dir():
        return load_directory(path, channels=channels)
    errors: list[PlaybookError] = []
    here = any((path.parent / name).is_file() for name in POLICIES_FILES)
    result = LoadResult(
        policies=_load_policies(path.parent if here else policies_dir, errors, channels),
        errors=errors,
    )
    _add_playbook(path, result, channels=channels, check_vars=not errors)
    return result


def _load_policies(
    directory: Path, errors: list[PlaybookError], channels: Collection[str]
) -> Policies:
    for name in POLICIES_FILES:
        file = directory / name
        if file.is_file():
            text, read_errors = read_file(file)
            policies, found = load_policies_text(text or "", filename=str(file), channels=channels)
            errors.extend(read_errors or found)
            return policies or Policies()
    return Policies()


def _add_playbook(
    file: Path, result: LoadResult, *, channels: Collection[str], check_vars: bool
) -> None:
    text, read_errors = read_file(file)
    if text is None:
        result.errors.extend(read_errors)
        return
    loaded, load_errors = load_text(
        text, filename=str(file), channels=channels, base_dir=file.parent
    )
    result.errors.extend(load_errors)
    if loaded is None:
        return
    if check_vars:
        result.errors.extend(vars_warnings(loaded, result.policies))
    first = result.playbooks.get(loaded.id)
    if first is None:
        result.playbooks[loaded.id] = loaded
    else:
        result.errors.append(duplicate_error(loaded, first_file=first.file))


_VARS_USE = re.compile(
    r"""\bvars\s*(?:\.\s*(?P<attr>[A-Za-z_]\w*)|\[\s*(?P<q>['"])(?P<key>[^'"]+)(?P=q)\s*\])"""
)


def vars_warnings(loaded: LoadedPlaybook, policies: Policies) -> list[PlaybookError]:
    """A warning for each ``vars.name`` the playbook uses that policies.yaml does not define:
    the message would fail with template_error when it is due."""
    known = sorted(policies.vars)
    warnings = []
    for number, line in enumerate(loaded.source.splitlines(), start=1):
        if line.lstrip().startswith("#"):
            continue
        for use in _VARS_USE.finditer(line):
            name = use["attr"] or use["key"]
            if name in policies.vars:
                continue
            start = use.start("attr") if use["attr"] else use.start("key")
            message = (
                f"vars.{name} is not defined in policies.yaml{did_you_mean(name, known)};"
                " messages using it will be skipped with template_error"
            )
            warnings.append(
                PlaybookError(loaded.file, number, start + 1, "", message, severity="warning")
            )
    return warnings


def yaml_files(folder: Path) -> list[Path]:
    """The YAML files of ``folder`` (not recursive), in name order; [] when it cannot be read."""
    try:
        return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    except OSError:
        return []


def read_file(file: Path) -> tuple[str | None, list[PlaybookError]]:
    """A file's UTF-8 text, or why it cannot be read."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        return None, [PlaybookError(str(file), 1, 1, "", f"cannot read file: {exc}")]
    return decode(data, filename=str(file))


def parse_mapping(
    text: str, *, filename: str, allow_empty: bool = False
) -> tuple[yaml.Node | None, Any, list[PlaybookError]]:
    """A YAML file's node tree (for error positions) and its mapping, or why it is not one:
    a YAML error, too deep, empty (unless ``allow_empty``), too many values, not a mapping."""
    try:
        root, data = compose_document(text)
    except yaml.YAMLError as exc:
        return None, None, [yaml_error(exc, file=filename, text=text)]
    except RecursionError:
        return None, None, [PlaybookError(filename, 1, 1, "", "the YAML is nested too deeply")]
    if root is None:
        empty = [] if allow_empty else [PlaybookError(filename, 1, 1, "", "file is empty")]
        return None, None, empty
    if _node_count(root, {}) > MAX_NODES:
        message = f"too many values: over {MAX_NODES} (each use of an alias *name counts)"
        return None, None, [error_at(root, file=filename, path="", message=message)]
    if not isinstance(data, dict):
        message = f"expected a mapping of fields (name: value), got {describe(data)}"
        return None, None, [error_at(root, file=filename, path="", message=message)]
    return root, data, []


def _node_count(node: yaml.Node, counted: dict[yaml.Node, int]) -> int:
    """Nodes with aliases expanded, capped just over the limit (a self-reference counts as over)."""
    if node in counted:
        return counted[node]
    counted[node] = MAX_NODES + 1
    if isinstance(node, yaml.MappingNode):
        children = [child for pair in node.value for child in pair]
    else:
        children = node.value if isinstance(node, yaml.SequenceNode) else []
    total = 1
    for child in children:
        total = min(total + _node_count(child, counted), MAX_NODES + 1)
    counted[node] = total
    return total


def _event_type_warnings(
    data: dict[str, Any], nodes: NodeIndex, *, file: str
) -> list[PlaybookError]:
    """A well-formed event type SMR does not produce is legal (custom) but often a typo."""
    exits = data.get("exit_on")
    places: list[tuple[Loc, Any]] = [(("trigger",), data.get("trigger"))]
    if isinstance(exits, list):
        places += [(("exit_on", index), rule) for index, rule in enumerate(exits)]
    warnings = []
    for loc, value in places:
        event = value.get("event") if isinstance(value, dict) else None
        message = custom_event_message(event) if isinstance(event, str) else None
        if message is not None:
            node, path = nodes.find((*loc, "event")), format_path((*loc, "event"))
            warnings.append(
                error_at(node, file=file, path=path, message=message, severity="warning")
            )
    return warnings


def _compile(spec: Playbook, *, text: str, filename: str) -> LoadedPlaybook:
    events, condition, keywords = _trigger_parts(spec.trigger)
    exits = tuple(_compile_exit(rule) for rule in spec.exit_on)
    return LoadedPlaybook(
        spec=spec,
        file=filename,
        version=hashlib.sha256(text.encode("utf-8")).hexdigest()[:12],
        source=text,
        program=compile_program(spec.steps),
        trigger_events=frozenset(events),
        condition=compile_expression(condition) if condition else None,
        keywords=keywords,
        exits=exits,
        listens_to=frozenset(events) | {rule.event for rule in exits},
        each=_each(spec.trigger),
        segment=spec.trigger.segment if isinstance(spec.trigger, EventTrigger) else None,
        goal=_compile_goal(spec.goal) if spec.goal else None,
    )


def _compile_goal(goal: Goal) -> CompiledGoal:
    condition = compile_expression(goal.condition) if goal.condition else None
    return CompiledGoal(goal.event, goal.within, condition, from_send=goal.from_ == "send")


def _each(trigger: EventTrigger | ScheduleTrigger) -> Expression | None:
    each = trigger.each if isinstance(trigger, EventTrigger) else None
    return compile_expression(each) if each else None


def _subject(trigger: EventTrigger | ScheduleTrigger) -> ContactKind:
    return trigger.subject if isinstance(trigger, ScheduleTrigger) else ContactKind.PERSON


def _trigger_parts(
    trigger: EventTrigger | ScheduleTrigger,
) -> tuple[tuple[str, ...], str | None, tuple[str, ...]]:
    if isinstance(trigger, ScheduleTrigger):
        return (), trigger.audience.condition, ()
    return trigger.events, trigger.condition, tuple(w.casefold() for w in trigger.keywords)


def _compile_exit(rule: ExitRule) -> CompiledExit:
    condition = compile_expression(rule.condition) if rule.condition else None
    return CompiledExit(event=rule.event, condition=condition)
