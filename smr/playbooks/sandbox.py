"""The Jinja2 environment playbook templates run in: immutable, and bounded.

Jinja's ``ImmutableSandboxedEnvironment`` keeps templates from reaching Python internals and
from changing the data they read (``event.data.pop('x')`` is refused). On top of it every render
has bounds, so that no template, however written, holds a worker or fills its memory:

- **steps**: calls, filters and loop iterations (each weighed by the reads, calls and operators
  of its body), at most ``MAX_STEPS`` per render;
- **time**: at most ``MAX_SECONDS`` of wall-clock time per render;
- **size**: every value a template builds (strings, lists, dicts, counted recursively) holds at
  most ``MAX_SIZE`` items; integers at most ``MAX_INT_BITS`` bits; everything a render writes,
  including text captured by ``set`` blocks and macros, at most ``MAX_WRITTEN`` characters;
- **depth**: macro and recursive-loop calls nest at most ``MAX_CALL_DEPTH`` deep.

A render past a bound raises ``LimitExceeded`` (a Jinja ``SecurityError``), which callers see as
``TemplateRuntimeError`` like any other failed render. Size checks run *before* an operation
that could build something large (``'x' * 10**9``, ``7 ** 3000000``, ``|center(10**9)``).
"""

from __future__ import annotations

import dataclasses
import operator
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from datetime import date, datetime
from functools import wraps
from inspect import Signature, signature
from string import Formatter
from typing import Any, TypeVar

import jinja2
from jinja2 import nodes, sandbox
from jinja2.exceptions import SecurityError
from jinja2.visitor import NodeTransformer

MAX_STEPS = 100_000
MAX_SECONDS = 1.0
MAX_SIZE = 100_000
MAX_INT_BITS = 1024
MAX_WRITTEN = 1_000_000
MAX_CALL_DEPTH = 32
#: ``tojson(indent=…)`` multiplies every line; nobody needs more than this.
MAX_JSON_INDENT = 16

_CHECK_CLOCK_EVERY = 256
_LOOP_FILTER = "smr_loop"
_CONCAT_FILTER = "smr_concat"
#: Methods of str a template may call: none of them builds more than it reads.
_STR_METHODS = frozenset(
    {
        "capitalize", "casefold", "count", "endswith", "find", "index", "isalnum", "isalpha",
        "isascii", "isdecimal", "isdigit", "islower", "isnumeric", "isspace", "istitle",
        "isupper", "join", "lower", "lstrip", "partition", "removeprefix", "removesuffix",
        "replace", "rfind", "rindex", "rpartition", "rsplit", "rstrip", "split", "splitlines",
        "startswith", "strip", "swapcase", "title", "upper", "format", "format_map",
    }
)  # fmt: skip
#: After ``%`` and its mapping key: flags, width, precision (``*`` takes them from arguments).
_PERCENT_SPEC = re.compile(r"[#0\- +]*(\*|[0-9]+)?(?:\.(\*|[0-9]+))?")
#: A ``str.format`` spec: [[fill]align][sign][z][#][0][width][grouping][.precision][type].
_BRACE_SPEC = re.compile(r"(?:.?[<>=^])?[+\- ]?z?#?0?([0-9]+)?[,_]?(?:\.([0-9]+))?")


#: What Jinja passes to filters that ask for it: not template data.
_PASSED = (jinja2.runtime.Context, nodes.EvalContext, jinja2.Environment)


class LimitExceeded(SecurityError):
    """A template went past one of its bounds."""


class NotAvailable(SecurityError):
    """A template reached for something the sandbox does not offer."""


class Budget:
    """What one render may still spend."""

    __slots__ = ("deadline", "depth", "steps", "written")

    def __init__(self) -> None:
        self.steps = MAX_STEPS
        self.written = MAX_WRITTEN
        self.depth = 0
        self.deadline = time.monotonic() + MAX_SECONDS

    def spend(self, steps: int = 1, written: int = 0) -> None:
        self.steps -= steps
        self.written -= written
        if self.steps < 0:
            raise LimitExceeded(f"template took more than {MAX_STEPS:,} steps")
        if self.written < 0:
            raise LimitExceeded(f"template wrote more than {MAX_WRITTEN:,} characters")
        if self.steps % _CHECK_CLOCK_EVERY < steps:
            self.check_clock()

    def check_clock(self) -> None:
        if time.monotonic() > self.deadline:
            raise LimitExceeded(f"template ran longer than {MAX_SECONDS:g} s")


_budget: ContextVar[Budget | None] = ContextVar("smr_template_budget", default=None)


def spend(steps: int = 1, written: int = 0) -> None:
    budget = _budget.get()
    if budget is not None:
        budget.spend(steps, written)


def bounded(render: Callable[[], Any]) -> Any:
    """Run ``render`` (a template's render or an expression's evaluation) under a fresh budget."""
    token = _budget.set(Budget())
    try:
        return render()
    finally:
        _budget.reset(token)


def size_of(value: Any, limit: int = MAX_SIZE) -> int:
    """Characters and items in ``value``, counted into containers; stops counting past ``limit``."""
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, Mapping):
            total += len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += len(item)
            stack.extend(item)
        elif isinstance(item, int) and item.bit_length() > MAX_INT_BITS:
            raise LimitExceeded(f"integers are limited to {MAX_INT_BITS} bits")
    return total


def check_size(value: Any) -> Any:
    if size_of(value) > MAX_SIZE:
        raise LimitExceeded(f"values are limited to {MAX_SIZE:,} characters or items")
    return value


def check_format(text: str) -> None:
    """Refuse a format string (``%`` or ``str.format``) whose widths and precisions, added up
    over all its fields, build more than ``MAX_SIZE`` characters, or that takes them from its
    arguments (``%*d``, ``{:{}}``)."""
    total = sum(_percent_widths(text)) + sum(_brace_widths(text))
    if total > MAX_SIZE:
        raise LimitExceeded(f"format widths are limited to {MAX_SIZE:,} in all")


def _percent_widths(text: str) -> Iterator[int]:
    at = text.find("%")
    while at != -1:
        at += 1
        if text.startswith("%", at):  # "%%" is a percent sign
            at = text.find("%", at + 1)
            continue
        spec = _PERCENT_SPEC.match(text, _after_key(text, at))
        assert spec is not None  # every part of the pattern is optional
        if "*" in spec[0]:
            raise LimitExceeded("format widths must be written out, not taken from arguments")
        yield from (int(n) for n in spec.groups() if n)
        at = text.find("%", spec.end())


def _after_key(text: str, at: int) -> int:
    """Past ``(key)`` at ``at``, if one is there; parentheses nest in a key, as Python reads it."""
    if not text.startswith("(", at):
        return at
    depth = 0
    for index in range(at, len(text)):
        depth += {"(": 1, ")": -1}.get(text[index], 0)
        if depth == 0:
            return index + 1
    return len(text)


def _brace_widths(text: str) -> Iterator[int]:
    if "{" not in text:
        return
    try:
        fields = list(Formatter().parse(text))
    except ValueError:
        return  # str.format refuses it too
    for _, name, spec, _ in fields:
        if name is None or not spec:
            continue
        if "{" in spec:
            raise LimitExceeded("format widths must be written out, not taken from arguments")
        found = _BRACE_SPEC.match(spec)
        if found is not None:
            yield from (int(n) for n in found.groups() if n)


def _product(left: Any, right: Any) -> Any:
    if isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > MAX_INT_BITS + 1:
            raise LimitExceeded(f"integers are limited to {MAX_INT_BITS} bits")
        return left * right
    for sequence, times in ((left, right), (right, left)):
        is_sequence = isinstance(sequence, str | list | tuple)
        if is_sequence and isinstance(times, int) and size_of(sequence) * times > MAX_SIZE:
            raise LimitExceeded(f"values are limited to {MAX_SIZE:,} characters or items")
    return left * right


def _power(base: Any, exponent: Any) -> Any:
    grows = isinstance(base, int) and isinstance(exponent, int) and abs(base) > 1
    if grows and (abs(base).bit_length() - 1) * exponent > MAX_INT_BITS:
        raise LimitExceeded(f"integers are limited to {MAX_INT_BITS} bits")
    return base**exponent


def _modulo(left: Any, right: Any) -> Any:
    if isinstance(left, str):
        check_format(left)
    return check_size(left % right)


def _sum(left: Any, right: Any) -> Any:
    return check_size(left + right)


#: Operators whose result can grow beyond their operands', checked before they run.
BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "*": _product,
    "**": _power,
    "%": _modulo,
    "+": _sum,
}


def safe_binop(op: str, left: Any, right: Any) -> Any:
    """The operator as templates run it (also used to fold constants at load)."""
    bounded_op = BINOPS.get(op)
    if bounded_op is None:
        return _PLAIN_BINOPS[op](left, right)
    return bounded_op(left, right)


_PLAIN_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "/": operator.truediv,
    "//": operator.floordiv,
    "-": operator.sub,
}


def _joined_size(items: Iterable[Any], separator: str) -> list[Any]:
    found = list(items)
    if size_of(found) + len(separator) * len(found) > MAX_SIZE:
        raise LimitExceeded(f"values are limited to {MAX_SIZE:,} characters or items")
    return found


def _replaced_size(text: str, old: str, new: str, count: int = -1) -> None:
    times = text.count(old) if old else len(text) + 1
    if count >= 0:
        times = min(times, count)
    if len(text) + times * max(len(new) - len(old), 0) > MAX_SIZE:
        raise LimitExceeded(f"values are limited to {MAX_SIZE:,} characters or items")


def _lines_times(text: Any, extra: Any) -> None:
    lines = str(text).count("\n") + 1
    width = extra if isinstance(extra, int) else len(str(extra))
    if lines * width + len(str(text)) > MAX_SIZE:
        raise LimitExceeded(f"values are limited to {MAX_SIZE:,} characters or items")


def _bounded_filter(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """``original`` with its arguments checked before it runs and its result after."""
    parameters = signature(original)
    # Arguments are bound to their names (a few µs) only where a check reads them by name, or
    # where *args would otherwise be counted one by one; elsewhere each is one parameter.
    by_name = name in _PRECHECKED or any(
        p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters.parameters.values()
    )

    @wraps(original)
    def run(*args: Any, **kwargs: Any) -> Any:
        named = _bind(parameters, args, kwargs) if by_name else None
        given = named.values() if named is not None else (*args, *kwargs.values())
        values = [v for v in given if not isinstance(v, _PASSED)]
        if any(isinstance(v, int) and abs(v) > MAX_SIZE for v in values):
            raise LimitExceeded(f"|{name}: numbers are limited to {MAX_SIZE:,} here")
        if named is not None:
            _precheck(name, named)
        budget = _budget.get()
        if budget is not None:
            budget.spend()
            budget.check_clock()  # one filter call can take long (sort, unique on big data)
        return check_size(original(*args, **kwargs))

    return run


def _bind(parameters: Signature, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The call's arguments by name. Jinja hands some filters a context its wrapper takes off
    before the function it wraps (and whose signature this is) sees the arguments."""
    try:
        return dict(parameters.bind(*args, **kwargs).arguments)
    except TypeError:
        while args and isinstance(args[0], _PASSED):
            args = args[1:]
        return dict(parameters.bind(*args, **kwargs).arguments)


#: The filters ``_precheck`` looks at.
_PRECHECKED = frozenset({"tojson", "format", "indent", "wordwrap", "replace", "join", "sum"})


def _precheck(name: str, named: dict[str, Any]) -> None:
    """Refuse a filter call that would build more than ``MAX_SIZE`` before it runs."""
    value = named.get("value", named.get("s"))
    if name == "tojson" and int(named.get("indent") or 0) > MAX_JSON_INDENT:
        raise LimitExceeded(f"|tojson: indent is limited to {MAX_JSON_INDENT}")
    if name == "format" and isinstance(value, str):
        check_format(value)
    elif name == "indent":
        _lines_times(value, named.get("width", 4))
    elif name == "wordwrap":
        text = str(value)
        lines = len(text) // max(int(named.get("width", 79)), 1) + text.count("\n") + 1
        if lines * len(str(named.get("wrapstring") or "\n")) + len(text) > MAX_SIZE:
            raise LimitExceeded(f"values are limited to {MAX_SIZE:,} characters or items")
    elif name == "replace":
        _replaced_size(str(value), str(named.get("old")), str(named.get("new")))
    elif name == "join" and isinstance(value, list | tuple):
        _joined_size(value, str(named.get("d", "")))
    elif name == "sum" and not isinstance(named.get("start", 0), int | float):
        raise LimitExceeded("|sum adds numbers only")


class _Bounds(NodeTransformer):
    """Loops pay a step (and their literal text) per iteration; ``~`` is a checked join."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        # What one iteration may do, read off the body once: its reads, calls and operators
        # (steps) and its literal text (written). Nested loops and calls pay their own way.
        steps = 1 + sum(1 for _ in node.find_all(nodes.Expr))
        literal = sum(len(d.data) for d in node.find_all(nodes.TemplateData))
        weights = [nodes.Const(steps, lineno=node.lineno), nodes.Const(literal, lineno=node.lineno)]
        node.iter = nodes.Filter(node.iter, _LOOP_FILTER, weights, [], None, None)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        items = nodes.List(list(node.nodes), lineno=node.lineno)
        return nodes.Filter(items, _CONCAT_FILTER, [], [], None, None, lineno=node.lineno)


def add_bounds(tree: nodes.Template) -> nodes.Template:
    found = _Bounds().visit(tree)
    assert isinstance(found, nodes.Template)
    return found


def _loop(items: Iterable[Any], steps: int, literal: int) -> Iterator[Any]:
    for item in items:
        spend(steps, literal)
        yield item


def _concat(parts: list[Any]) -> str:
    texts = [str(p) for p in parts]
    return str(check_size("".join(texts)))


_View = TypeVar("_View", bound=type)
#: The fields of the views templates read (``smr.playbooks.context``), by view class.
_VIEW_FIELDS: dict[type, frozenset[str]] = {}


def template_view(cls: _View) -> _View:
    """Mark a frozen dataclass as a view of data for templates: its fields hold plain data
    (text, numbers, dates, JSON, other views) and are read without the checks an attribute of
    an arbitrary object needs; its methods and properties still go through them."""
    _VIEW_FIELDS[cls] = frozenset(f.name for f in dataclasses.fields(cls))
    return cls


class BoundedEnvironment(sandbox.ImmutableSandboxedEnvironment):
    """Posted data is plain JSON: ``event.data.items`` means the ``items`` key, not dict.items."""

    intercepted_binops = frozenset(BINOPS)

    def __init__(self) -> None:
        super().__init__(undefined=jinja2.StrictUndefined, autoescape=False, finalize=_written)
        # Globals such as range/namespace/cycler are only a foothold; templates get the context.
        self.globals.clear()
        self.filters = {n: _bounded_filter(n, f) for n, f in self.filters.items()}
        self.filters[_LOOP_FILTER] = _loop
        self.filters[_CONCAT_FILTER] = _concat

    # Reads and operators pay nothing themselves: a template's own text bounds how many it
    # makes, and loops and calls (which repeat them) pay for theirs.
    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        if attribute in _VIEW_FIELDS.get(type(obj), ()):
            return getattr(obj, attribute)
        if isinstance(obj, str) and attribute not in _STR_METHODS and hasattr(str, attribute):
            raise NotAvailable(f"str.{attribute} is not available in templates")
        value = super().getattr(obj, attribute)
        if isinstance(getattr(value, "__self__", None), type) and callable(value):
            # A class's own methods act on the process, not the value: now.tzinfo.clear_cache()
            # empties every zone cache, now.now() reads the real clock.
            raise NotAvailable(f"{type(obj).__name__}.{attribute} is not available in templates")
        return value

    def getitem(self, obj: Any, argument: Any) -> Any:
        # ``data['items']`` on an order without items is missing, never the dict's method.
        if isinstance(obj, dict):
            if argument in obj:
                return obj[argument]
            return self.undefined(obj=obj, name=argument)
        return super().getitem(obj, argument)

    def call_binop(self, context: jinja2.runtime.Context, op: str, left: Any, right: Any) -> Any:
        return safe_binop(op, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = _budget.get()
        if budget is not None:
            budget.spend()
            if budget.depth >= MAX_CALL_DEPTH:
                raise LimitExceeded(f"calls nest at most {MAX_CALL_DEPTH} deep")
            budget.depth += 1
        try:
            args = _precheck_method(__obj, args)
            result = super().call(__context, __obj, *args, **kwargs)
        finally:
            if budget is not None:
                budget.depth -= 1
        size = size_of(result)
        if size > MAX_SIZE:
            raise LimitExceeded(f"values are limited to {MAX_SIZE:,} characters or items")
        spend(written=size if isinstance(result, str) else 0)
        return result

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        found = super().wrap_str_format(value)
        if found is not None:
            check_format(value.__self__)
        return found


def _precheck_method(method: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """``args`` as the call should get them (a generator to join is read once, here)."""
    owner = getattr(method, "__self__", None)
    if not isinstance(owner, str):
        return args
    name = getattr(method, "__name__", "")
    if name == "join" and args:
        return (_joined_size(args[0], owner), *args[1:])
    if name == "replace" and len(args) >= 2:
        _replaced_size(owner, str(args[0]), str(args[1]), *(int(a) for a in args[2:3]))
    return args


def _written(value: Any) -> Any:
    if isinstance(value, str):
        spend(written=len(value))
    elif isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise LimitExceeded(f"integers are limited to {MAX_INT_BITS} bits")
    return value


def as_date(value: Any) -> date:
    """The ``date`` filter: ``"2026-12-12" | date``, ``now | date`` (the local day), so that
    ``(vars.launch_date | date - now | date).days`` counts days."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return date.fromisoformat(value.strip()[:10])
    raise TypeError(f"cannot read a date from {type(value).__name__}")


ENVIRONMENT = BoundedEnvironment()
ENVIRONMENT.filters["date"] = _bounded_filter("date", as_date)
