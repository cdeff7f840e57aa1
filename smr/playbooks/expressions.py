"""Sandboxed Jinja2 conditions (expressions without braces) and text templates.

Everything is checked when a playbook loads: syntax, names outside the template context, and
attribute or item access that could reach Python internals. The sandbox still guards at runtime;
the load-time check exists so an escape attempt is rejected before it ever runs.

Raises ``TemplateCompileError`` at compile time and ``TemplateRuntimeError`` when evaluating.
"""

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import meta, nodes, sandbox
from jinja2.parser import Parser

from smr.edge import storable, unstorable
from smr.playbooks.sandbox import (
    ENVIRONMENT,
    MAX_SIZE,
    LimitExceeded,
    add_bounds,
    bounded,
    safe_binop,
)

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
#: Python's own compiler refuses some templates: deep nesting ("too many statically nested
#: blocks", IndentationError), or recursion in the parser.
_COMPILER_ERRORS = (SyntaxError, RecursionError, MemoryError)
_env = ENVIRONMENT


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
        with _compiling():
            self._compiled = _env.compile_expression(source, undefined_to_none=False)
            tree = Parser(_env, source, state="variable").parse_expression()
            wrapper = nodes.Template([nodes.Output([tree])], lineno=1)
            wrapper.set_environment(_env)
            _check_tree(wrapper)

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        return _guarded(lambda: self._evaluate(context))

    def _evaluate(self, context: Mapping[str, Any]) -> Any:
        value = self._compiled(**context)
        if isinstance(value, jinja2.Undefined):
            str(value)  # StrictUndefined raises here with Jinja's own message
        return value

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


class NotAList(Exception):
    """A list expression (``trigger.each``, ``add_each``) that gave something else."""

    def __init__(self, expression: Expression, value: object) -> None:
        super().__init__(f"{expression.source} is a {type(value).__name__}, not a list")


def items_of(
    expression: Expression, context: Mapping[str, Any], *, longest: int, most: int
) -> list[str]:
    """The distinct items a list expression gives, as text: each text or number (not a bool),
    stripped, blanks and those over ``longest`` characters left out; at most ``most``.

    Raises TemplateRuntimeError, or NotAList when the value is not a list."""
    value = expression.evaluate(context)
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise NotAList(expression, value)
    kept = (v for v in value if isinstance(v, str | int | float) and not isinstance(v, bool))
    texts = (str(v).strip() for v in kept)
    return list(dict.fromkeys(t for t in texts if 0 < len(t) <= longest))[:most]


class Template:
    """A compiled text template such as ``{{ contact.name }}，您好``."""

    def __init__(self, source: str) -> None:
        self.source = source
        with _compiling():
            tree = _env.parse(source)
            _check_tree(tree)
            #: The context names it reads (``contact``, ``vars`` …).
            self.names = frozenset(meta.find_undeclared_variables(tree))
            self._compiled = _env.from_string(add_bounds(tree))

    def render(self, context: Mapping[str, Any]) -> str:
        text: str = _guarded(lambda: self._compiled.render(context))
        if len(text) > MAX_SIZE:
            raise TemplateRuntimeError(f"rendered text is longer than {MAX_SIZE:,} characters")
        if unstorable(text):
            raise TemplateRuntimeError("rendered text holds a NUL or a lone surrogate")
        return text

    def __repr__(self) -> str:
        return f"Template({self.source!r})"


@contextmanager
def _compiling() -> Iterator[None]:
    """Jinja's and Python's compile errors as TemplateCompileError, with the line when known."""
    try:
        yield
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateCompileError(exc.message or str(exc), exc.lineno) from exc
    except _COMPILER_ERRORS as exc:
        message = "nested too deeply"
        raise TemplateCompileError(message, getattr(exc, "lineno", None) or 1) from exc


def _guarded(run: Any) -> Any:
    try:
        return bounded(run)
    except LimitExceeded as exc:
        raise TemplateRuntimeError(f"template exceeds its bounds: {exc.message}") from exc
    except Exception as exc:  # whatever a render raises is that render's failure, and no other's
        raise TemplateRuntimeError(_describe(exc)) from exc


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
    _check_macros(tree)
    for binop in tree.find_all(nodes.BinExpr):
        _check_constant(binop)
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


def _check_macros(tree: nodes.Template) -> None:
    """Refuse a macro that refers to itself, directly or through other macros: it would
    recurse until a bound stops it, every time it runs."""
    macros = {m.name: m for m in tree.find_all(nodes.Macro)}
    refers = {
        name: {n.name for n in m.find_all(nodes.Name) if n.name in macros}
        for name, m in macros.items()
    }
    for name, macro in macros.items():
        seen, todo = set(), list(refers[name])
        while todo:
            other = todo.pop()
            if other == name:
                raise TemplateCompileError(f"macro '{name}' calls itself", macro.lineno)
            if other not in seen:
                seen.add(other)
                todo.extend(refers[other])


def _check_constant(node: nodes.BinExpr) -> None:
    """Fold ``7 ** 3000000`` or ``'x' * 50000000`` at load to refuse it there."""
    eval_ctx = nodes.EvalContext(_env)
    try:
        left, right = node.left.as_const(eval_ctx), node.right.as_const(eval_ctx)
    except nodes.Impossible:
        return
    try:
        safe_binop(node.operator, left, right)
    except LimitExceeded as exc:
        raise TemplateCompileError(exc.message or str(exc), node.lineno) from exc
    except (ArithmeticError, TypeError, ValueError):
        return  # a runtime error like any other; the run log will show it


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


def _describe(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "template recursed too deeply"
    if isinstance(exc, jinja2.TemplateError):
        message = exc.message or type(exc).__name__
    else:
        message = f"{type(exc).__name__}: {exc}"
    # The message may quote data; keep it storable and short.
    return str(storable(message[:500]))
