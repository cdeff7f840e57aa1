"""Validation problems in the words of an ops person: what is wrong and what was meant.

``plain_message`` turns one pydantic error into a sentence; ``choices`` are the names that would
have been right at that place (field names, step keys), used to suggest the closest one.
"""

import difflib
import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from pydantic_core import ErrorDetails

from smr.playbooks.fields import (
    CANONICAL_EVENT_TYPES,
    EVENT_TYPE_PATTERN,
    MINI_APPID_PATTERN,
    PLAYBOOK_ID_PATTERN,
    STAFF_TAG_PATTERN,
    STAFF_USERID_PATTERN,
)

_PATTERN_HINTS = {
    PLAYBOOK_ID_PATTERN: (
        "playbook id",
        "use 1-64 lowercase letters, digits or '-', starting with a letter or digit,"
        " e.g. repurchase-face-wash",
    ),
    EVENT_TYPE_PATTERN: ("event type", "use lowercase words joined by dots, e.g. order.paid"),
    STAFF_USERID_PATTERN: (
        "staff userid",
        "a WeCom userid has no spaces and no '|', e.g. zhangsan",
    ),
    STAFF_TAG_PATTERN: ("staff tag id", "use the number of a WeCom 通讯录 tag, e.g. 3"),
    MINI_APPID_PATTERN: (
        "mini program appid",
        "'wx' and 16 letters or digits, e.g. wx8bd80126147dfAAA",
    ),
}
_EXPECTED = {
    "string_type": "text",
    "list_type": "a list",
    "dict_type": "a mapping (name: value)",
    "model_type": "a mapping (name: value)",
    "model_attributes_type": "a mapping (name: value)",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
}


def closest(word: str, choices: Sequence[str]) -> str | None:
    found = difflib.get_close_matches(word, choices, n=1)
    return found[0] if found else None


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    match = closest(word, choices)
    return f" (did you mean '{match}'?)" if match else ""


def describe(value: Any) -> str:
    """What a YAML value is, as the person who wrote it would say."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return "text" if len(value) > 40 else f"text '{value}'"
    if isinstance(value, datetime | date):
        return f"the date {value.isoformat()}"
    if isinstance(value, list):
        return "a list"
    return "a mapping" if isinstance(value, dict) else type(value).__name__


def misplaced_key(kind: str, value: Any, choices: Sequence[str]) -> str | None:
    """The key a step or trigger without any of ``choices`` has instead, if any."""
    if kind not in ("bad_step", "bad_trigger") or not isinstance(value, dict):
        return None
    if any(key in value for key in choices):
        return None
    keys = [str(key) for key in value]
    return next((key for key in keys if closest(key, choices)), keys[0] if keys else None)


def custom_event_message(event: str) -> str | None:
    """Why a well-formed event type that SMR does not produce deserves a second look."""
    if event in CANONICAL_EVENT_TYPES or not re.fullmatch(EVENT_TYPE_PATTERN, event):
        return None
    hint = did_you_mean(event, CANONICAL_EVENT_TYPES)
    if hint:
        return f"unknown event type '{event}'{hint}"
    return f"custom event type '{event}': it starts runs only if your systems post it"


def plain_message(details: ErrorDetails, *, choices: Sequence[str]) -> str:
    kind, value = details["type"], details["input"]
    ctx: dict[str, Any] = dict(details.get("ctx") or {})
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {describe(value)}"
    if kind == "value_error":
        return str(ctx["error"])
    if kind == "extra_forbidden":
        return _unknown_field(str(details["loc"][-1]), choices)
    if kind == "missing":
        return f"missing required field '{details['loc'][-1]}'"
    if kind == "literal_error":
        return _one_of(value, re.findall(r"'([^']*)'", str(ctx["expected"])))
    if kind == "unknown_channel":
        return _unknown_channel(str(ctx["channel"]), tuple(ctx["known"]))
    if kind == "string_pattern_mismatch" and ctx["pattern"] in _PATTERN_HINTS:
        what, hint = _PATTERN_HINTS[ctx["pattern"]]
        return f"'{value}' is not a valid {what}: {hint}"
    if kind in ("bad_step", "bad_trigger"):
        return _bad_union(kind, value, choices)
    if kind == "bad_wait":
        return f"{details['msg']} (got {describe(value)})"
    return _limit(kind, ctx) or details["msg"]


def _unknown_field(name: str, choices: Sequence[str]) -> str:
    hint = did_you_mean(name, choices)
    if not hint and choices:
        hint = f" (allowed here: {', '.join(choices)})"
    return f"unknown field '{name}'{hint}"


def _one_of(value: Any, allowed: Sequence[str]) -> str:
    hint = did_you_mean(value, allowed) if isinstance(value, str) else ""
    return f"must be one of: {', '.join(allowed)}{hint or f' (got {describe(value)})'}"


def _unknown_channel(channel: str, known: Sequence[str]) -> str:
    hint = did_you_mean(channel, known) or f" (configured: {', '.join(known)})"
    return f"unknown channel '{channel}'{hint}"


def _bad_union(kind: str, value: Any, choices: Sequence[str]) -> str:
    what = "step" if kind == "bad_step" else "trigger"
    listed = ", ".join(choices)
    if not isinstance(value, dict):
        return f"expected a {what} ({listed}), got {describe(value)}"
    present = [key for key in choices if key in value]
    if len(present) > 1:
        return f"a {what} does one thing, found {' and '.join(present)}: give each its own '- '"
    key = misplaced_key(kind, value, choices)
    if kind == "bad_step":
        if key is None:
            return f"empty step (a step is one of: {listed})"
        return (
            f"unknown step '{key}'{did_you_mean(key, choices) or f' (a step is one of: {listed})'}"
        )
    if key and closest(key, choices):
        return _unknown_field(key, choices)
    found = ", ".join(map(str, value)) or "nothing"
    return f"trigger needs either {' or '.join(map(repr, choices))} (found: {found})"


_BOUNDS = {
    "greater_than_equal": ("ge", "at least"),
    "greater_than": ("gt", "more than"),
    "less_than_equal": ("le", "at most"),
    "less_than": ("lt", "less than"),
}


def _limit(kind: str, ctx: dict[str, Any]) -> str | None:
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "too_short":
        count = ctx["min_length"]
        return f"needs at least {count} item{'s' if count != 1 else ''}"
    if kind == "too_long":
        return "must be empty" if ctx["max_length"] == 0 else f"at most {ctx['max_length']} items"
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        return f"must be {words} {ctx[key]}"
    return None
