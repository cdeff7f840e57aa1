"""Sandboxed Jinja2 conditions (expressions without braces) and text templates.

Everything is checked when a playbook loads: syntax, names outside the template context, and
attribute or item access that could reach Python internals. The sandbox still guards at runtime;
the load-time check exists so an escape attempt is rejected before it ever runs.

Raises ``TemplateCompileError`` at compile time and ``TemplateRuntimeError`` when evaluating.
"""

from collections.abc import Iterator, Mapping
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import meta, nodes, sandbox
from jinja2.parser import Parser

CONTEXT_NAMES = ("contact", "event", "trigger", "run", "now", "vars")

_UNSAFE_ATTRIBUTES = frozenset(
    {"mro"}
    | sandbox.UNSAFE_FUNCTION_ATTRIBUTES
    | sandbox.UNSAFE_METHOD_ATTRIBUTES
    | sandbox.UNSAFE_GENERATOR_ATTRIBUTES
    | sandbox.UNSAFE_COROUTINE_ATTRIBUTES
    | sandbox.UNSAFE_ASYNC_GENERATOR_ATTRIBUTES
)
_FORBIDDEN_NODES = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)
_RUNTIME_ERRORS = (
    jinja2.TemplateError,
    ArithmeticError,
    LookupError,
    TypeError,
    ValueError,
    AttributeError,
)


class _Environment(sandbox.SandboxedEnvironment):
    """Posted data is plain JSON: ``event.data.items`` means the ``items`` key, not dict.items."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        # ``data['items']`` on an order without items is missing, never the dict's method.
        if isinstance(obj, dict):
            if argument in obj:
                return obj[argument]
            return self.undefined(obj=obj, name=argument)
        return super().getitem(obj, argument)


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


_env = _Environment(undefined=jinja2.StrictUndefined, autoescape=False)
# Globals such as cycler/joiner are only a foothold for escapes; templates get the context only.
_env.globals.clear()
_env.filters["date"] = as_date


class TemplateCompileError(Exception):
    def __init__(self, message: str, lineno: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.lineno = lineno


class TemplateRuntimeError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Expression:
    """A compiled condition such as ``contact.stats.orders > 1``."""

    def __init__(self, source: str) -> None:
        self.source = source
        try:
            self._compiled = _env.compile_expression(source, undefined_to_none=False)
            tree = Parser(_env, source, state="variable").parse_expression()
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateCompileError(exc.message or str(exc), exc.lineno) from exc
        wrapper = nodes.Template([nodes.Output([tree])], lineno=1)
        wrapper.set_environment(_env)
        _check_tree(wrapper)

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        try:
            value = self._compiled(**context)
            if isinstance(value, jinja2.Undefined):
                str(value)  # StrictUndefined raises here with Jinja's own message
        except _RUNTIME_ERRORS as exc:
            raise TemplateRuntimeError(_describe(exc)) from exc
        return value

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


class Template:
    """A compiled text template such as ``{{ contact.name }}，您好``."""

    def __init__(self, source: str) -> None:
        self.source = source
        try:
            tree = _env.parse(source)
            self._compiled = _env.from_string(tree)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateCompileError(exc.message or str(exc), exc.lineno) from exc
        _check_tree(tree)

    def render(self, context: Mapping[str, Any]) -> str:
        try:
            return self._compiled.render(context)
        except _RUNTIME_ERRORS as exc:
            raise TemplateRuntimeError(_describe(exc)) from exc

    def __repr__(self) -> str:
        return f"Template({self.source!r})"


@lru_cache(maxsize=4096)
def compile_expression(source: str) -> Expression:
    return Expression(source)


@lru_cache(maxsize=4096)
def compile_template(source: str) -> Template:
    return Template(source)


def is_template(text: str) -> bool:
    return "{{" in text or "{%" in text


def _check_tree(tree: nodes.Template) -> None:
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter, *_FORBIDDEN_NODES)):
        _check_node(node)
    unknown = sorted(meta.find_undeclared_variables(tree) - set(CONTEXT_NAMES))
    if unknown:
        line = _first_name_line(tree, unknown[0])
        available = ", ".join(CONTEXT_NAMES)
        raise TemplateCompileError(f"unknown name '{unknown[0]}' (available: {available})", line)


def _check_node(node: nodes.Node) -> None:
    if isinstance(node, _FORBIDDEN_NODES):
        raise TemplateCompileError("extends, include and import are not allowed", node.lineno)
    for name in _accessed_names(node):
        if name.startswith("_") or name in _UNSAFE_ATTRIBUTES:
            raise TemplateCompileError(f"access to '{name}' is not allowed", node.lineno)


def _accessed_names(node: nodes.Node) -> Iterator[str]:
    if isinstance(node, nodes.Getattr):
        yield node.attr
    elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        yield str(node.arg.value)
    elif isinstance(node, nodes.Filter) and node.name == "attr":
        yield from (str(arg.value) for arg in node.args if isinstance(arg, nodes.Const))


def _first_name_line(tree: nodes.Template, name: str) -> int:
    lines = [node.lineno for node in tree.find_all(nodes.Name) if node.name == name]
    return min(lines, default=1)


def _describe(exc: Exception) -> str:
    if isinstance(exc, jinja2.TemplateError):
        return exc.message or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"
