"""The playbook language: schema, loader, sandboxed templates, compiled programs, pure engine."""

from smr.playbooks.context import ContactStats, ContactView, EventView, RunView, build_context
from smr.playbooks.effects import (
    Completed,
    Effect,
    EmitEffect,
    Execution,
    Failed,
    RunOutcome,
    SendEffect,
    SetEffect,
    Stopped,
    TagEffect,
    TraceEntry,
    Waiting,
)
from smr.playbooks.engine import (
    ActiveRun,
    Evaluation,
    ExitMatch,
    Outcome,
    RunHistory,
    evaluate_event,
    execute,
    match_exits,
)
from smr.playbooks.errors import PlaybookError
from smr.playbooks.expressions import (
    CONTEXT_NAMES,
    Expression,
    Template,
    TemplateCompileError,
    TemplateRuntimeError,
    compile_expression,
    compile_template,
)
from smr.playbooks.fields import CANONICAL_EVENT_TYPES
from smr.playbooks.loader import (
    CompiledExit,
    LoadedPlaybook,
    LoadResult,
    load_directory,
    load_path,
    load_policies_text,
    load_text,
)
from smr.playbooks.policies import FrequencyCap, Policies, QuietHours, RateLimit
from smr.playbooks.program import Program, compile_program
from smr.playbooks.schema import EventTrigger, Playbook, ScheduleTrigger
from smr.playbooks.steps import Instruction
from smr.playbooks.timespec import format_duration, parse_clock, parse_duration, validate_cron
from smr.playbooks.validation import FileKind, check_source, kind_of

__all__ = [
    "CANONICAL_EVENT_TYPES",
    "CONTEXT_NAMES",
    "ActiveRun",
    "CompiledExit",
    "Completed",
    "ContactStats",
    "ContactView",
    "Effect",
    "EmitEffect",
    "Evaluation",
    "EventTrigger",
    "EventView",
    "Execution",
    "ExitMatch",
    "Expression",
    "Failed",
    "FileKind",
    "FrequencyCap",
    "Instruction",
    "LoadResult",
    "LoadedPlaybook",
    "Outcome",
    "Playbook",
    "PlaybookError",
    "Policies",
    "Program",
    "QuietHours",
    "RateLimit",
    "RunHistory",
    "RunOutcome",
    "RunView",
    "ScheduleTrigger",
    "SendEffect",
    "SetEffect",
    "Stopped",
    "TagEffect",
    "Template",
    "TemplateCompileError",
    "TemplateRuntimeError",
    "TraceEntry",
    "Waiting",
    "build_context",
    "check_source",
    "compile_expression",
    "compile_program",
    "compile_template",
    "evaluate_event",
    "execute",
    "format_duration",
    "kind_of",
    "load_directory",
    "load_path",
    "load_policies_text",
    "load_text",
    "match_exits",
    "parse_clock",
    "parse_duration",
    "validate_cron",
]
