"""Templates are bounded and immutable: no template, however written, stalls a worker, fills its
memory or changes the data it reads."""

from __future__ import annotations

import copy
import tracemalloc
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from smr.playbooks import sandbox
from smr.playbooks.expressions import (
    Expression,
    Template,
    TemplateCompileError,
    TemplateRuntimeError,
)


def context(**data: Any) -> dict[str, Any]:
    event = {"type": "chat.message", "data": {"text": "你好", **data}}
    contact = {"name": "小王", "tags": ["会员"], "attributes": {"level": 1}}
    return {"event": event, "contact": contact, "trigger": event, "vars": {}}


def render(source: str, **data: Any) -> str:
    return Template(source).render(context(**data))


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{% macro r(n) %}{{ r(n) }}{% endmacro %}{{ r(1) }}", "macro 'r' calls itself"),
        (
            "{% macro a() %}{{ b() }}{% endmacro %}\n"
            "{% macro b() %}{{ a() }}{% endmacro %}{{ a() }}",
            "calls itself",
        ),
        ("{% macro r() %}{% set g = r %}{{ g() }}{% endmacro %}{{ r() }}", "calls itself"),
        ("{{ 7**3000000 }}", "integers are limited to 1024 bits"),
        ("{{ 'x' * 50000000 }}", "values are limited to 100,000"),
        ("{{ '%999999999d' % 1 }}", "format widths"),
        ("{{ '%(a(b)c)999999999s' % {'a(b)c': 1} }}", "format widths"),
        # what Python's own compiler refuses is a load error too, not an exception
        ("{% if 1 %}" * 99 + "x" + "{% endif %}" * 99, "nested too deeply"),
        ("{% for a in [1] %}" * 21 + "x" + "{% endfor %}" * 21, "nested too deeply"),
        ("hi\n{{ [1] * 10000000 }}", "values are limited to 100,000"),
    ],
)
def test_what_can_be_refused_is_refused_at_load(source: str, message: str) -> None:
    with pytest.raises(TemplateCompileError, match=message) as found:
        Template(source)
    assert found.value.lineno >= 1
    if source.startswith("hi\n"):
        assert found.value.lineno == 2


@pytest.mark.parametrize(
    ("source", "data", "message"),
    [
        # recursion the load cannot see: a macro handed itself
        ("{% macro a(f) %}{{ f(f) }}{% endmacro %}{{ a(a) }}", {}, "calls nest at most"),
        ("{{ 7 ** event.data.n }}", {"n": 3_000_000}, "1024 bits"),
        ("{{ 'x' * event.data.n }}", {"n": 50_000_000}, "100,000"),
        ("{{ event.data.n * 'x' }}", {"n": 50_000_000}, "100,000"),
        ("{{ event.data.n ** 20 * event.data.n ** 20 }}", {"n": 2**60}, "1024 bits"),
        (
            "{% set s = 'x' * 90000 %}{% set s = s ~ s %}{{ s }}",
            {},
            "100,000",
        ),
        ("{% set s = 'x' * 90000 %}{{ s + s }}", {}, "100,000"),
        (
            "{% macro d(f, s, n) %}{% if n %}{{ f(f, s ~ s, n - 1) }}{% endif %}{% endmacro %}"
            "{{ d(d, 'xx', event.data.n) }}",
            {"n": 30},
            "limited",
        ),
        ("{{ 'x' | center(event.data.n) }}", {"n": 10**9}, "numbers are limited"),
        ("{{ '{:>999999999}'.format(1) }}", {}, "format widths"),
        ("{{ '{:>{}}'.format(1, event.data.n) }}", {"n": 10**9}, "format widths"),
        ("{{ '%999999999d' % event.data.n }}", {"n": 1}, "format widths"),
        ("{{ '%*d' % (event.data.n, 1) }}", {"n": 10**9}, "format widths"),
        ("{{ '%999999999d' | format(1) }}", {}, "format widths"),
        ("{{ (event.data.s * 1000).join(['a'] * 1000) }}", {"s": "x" * 90}, "100,000"),
        ("{{ (['a'] * 1000) | join('x' * 1000) }}", {}, "100,000"),
        ("{{ ('a' * 1000).replace('a', 'b' * 1000) }}", {}, "100,000"),
        ("{{ ('a' * 1000) | replace('a', 'b' * 1000) }}", {}, "100,000"),
        ("{{ {'a': 1} | tojson(indent=100000) }}", {}, "indent is limited"),
        ("{{ ['a'] | batch(event.data.n, 0) | list }}", {"n": 10**9}, "numbers are limited"),
        (
            "{% set l = ['x'] * 1000 %}"
            "{% for a in l %}{% for b in l %}{% for c in l %}{% endfor %}{% endfor %}{% endfor %}",
            {},
            "more than 100,000 steps",
        ),
        (
            "{% set l = ['x'] * 50000 %}{% for a in l %}{{ 'y' * 50000 }}{% endfor %}",
            {},
            "wrote more than 1,000,000 characters",
        ),
        ("{% for a in ['x'] * 900 %}" + "z" * 2000 + "{% endfor %}", {}, "wrote more than"),
        # many fields, each within the width bound: their sum is what gets built
        ("{{ ('{0:>99999}' * 5000).format(1) | length }}", {}, "format widths"),
        ("{{ ('%(a)99999s' * 5000) | format(a=1) | length }}", {}, "format widths"),
        ("{{ (event.data.f * 5000) % {'a': 1} }}", {"f": "%(a)99999s"}, "format widths"),
        # a mapping key may hold parentheses, as Python reads it
        ("{{ event.data.f % {'a(b)c': 1} }}", {"f": "%(a(b)c)999999999s"}, "format widths"),
        # widths given by keyword, in any order
        ("{{ ('x\n' * 5000) | indent(first=true, width=99999) | length }}", {}, "100,000"),
        ("{{ ('x' * 20000) | wordwrap(1, true, 'y' * 5000, true) | length }}", {}, "100,000"),
        ("{{ ([[0]] * 50000) | sum(start=[]) | length }}", {}, "adds numbers only"),
    ],
)
def test_a_render_past_a_bound_is_a_template_error(
    source: str, data: dict[str, Any], message: str
) -> None:
    with pytest.raises(TemplateRuntimeError, match=message) as found:
        render(source, **data)
    assert "bounds" in found.value.message or "limited" in found.value.message


def test_a_render_past_its_time_is_a_template_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "MAX_SECONDS", -1.0)  # every clock check finds it late

    with pytest.raises(TemplateRuntimeError, match="ran longer than"):
        render("{% for a in ['x'] * 1000 %}{{ a }}{% endfor %}")
    assert render("{{ contact.name }}") == "小王"  # too short to look at the clock


def test_an_expression_is_bounded_too() -> None:
    with pytest.raises(TemplateRuntimeError, match="100,000"):
        Expression("'x' * event.data.n == ''").evaluate(context(n=10**8))
    with pytest.raises(TemplateCompileError, match="1024 bits"):
        Expression("7 ** 3000000 > 1")


@pytest.mark.parametrize(
    "source",
    [
        "{{ event.data.pop('text') }}",
        "{{ event.data.update({'text': 'x'}) }}",
        "{{ event.data.clear() }}",
        "{{ contact.tags.append('x') }}",
        "{{ contact.tags.pop() }}",
        "{{ contact.attributes.setdefault('level', 9) }}",
        "{{ contact.tags.sort() }}",
    ],
)
def test_templates_cannot_change_the_data_they_read(source: str) -> None:
    values = context()
    before = copy.deepcopy(values)

    with pytest.raises(TemplateRuntimeError):
        Template(source).render(values)

    assert values == before


def test_rendered_text_a_database_cannot_hold_is_a_template_error() -> None:
    with pytest.raises(TemplateRuntimeError, match="NUL"):
        render("a{{ '\\x00' }}b")
    with pytest.raises(TemplateRuntimeError, match="NUL"):
        render("{{ '\\ud800' }}")


def test_ordinary_templates_still_render() -> None:
    source = (
        "{{ contact.name ~ '，' }}{% for t in contact.tags %}{{ loop.index }}.{{ t }}"
        "{% endfor %} {{ ', '.join(event.data.skus) }} {{ event.data.skus | join('/') }}"
        " {{ '%05.1f' % 3.14159 }} {{ '{:>6}'.format('ok') }} {{ 2 ** 10 }}"
        " {{ 'ab' * 3 }} {{ event.data.text | replace('你', '您') | center(6) }}"
    )

    text = render(source, skus=["A", "B"])

    assert text == "小王，1.会员 A, B A/B 003.1     ok 1024 ababab   您好  "


@pytest.mark.parametrize(
    ("source", "message"),
    [
        # a filter's own assertion is the render's failure, not an exception of another kind
        ("{{ contact.name | truncate(2) }}", "AssertionError"),
        # a class's methods act on the process: clear every zone cache, read the real clock
        ("{{ now.tzinfo.clear_cache() }}", "ZoneInfo.clear_cache is not available"),
        ("{{ now.now() }}", "datetime.now is not available"),
        # methods that build large strings: the filters (|center) are bounded instead
        ("{{ 'x'.center(999999999) }}", "str.center is not available"),
        ("{{ 'x'.ljust(99) }}", "str.ljust is not available"),
    ],
)
def test_whatever_a_render_raises_is_a_template_error(source: str, message: str) -> None:
    values = {**context(), "now": datetime(2026, 12, 6, 10, tzinfo=ZoneInfo("Asia/Shanghai"))}

    with pytest.raises(TemplateRuntimeError, match=message):
        Template(source).render(values)


def test_a_generator_joined_by_a_string_is_joined_whole() -> None:
    assert render("{{ ', '.join(event.data.skus | map('upper')) }}", skus=["a", "b"]) == "A, B"


def test_the_current_time_is_still_usable() -> None:
    now = datetime(2026, 12, 6, 10, tzinfo=ZoneInfo("Asia/Shanghai"))

    text = Template("{{ now.strftime('%m-%d') }} {{ now.hour }} {{ now.tzinfo.key }}").render(
        {**context(), "now": now}
    )

    assert text == "12-06 10 Asia/Shanghai"


@pytest.mark.parametrize(
    "source",
    [
        "{{ ('x\\n' * 5000) | indent(first=true, width=99999) }}",
        "{{ ('x' * 20000) | wordwrap(1, true, 'y' * 5000, true) }}",
        "{{ ('{0:>99999}' * 5000).format(1) }}",
        "{{ ('x' * 99999) | center(99999) | replace('x', 'yy') }}",
    ],
)
def test_a_bound_is_checked_before_the_value_is_built(source: str) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(TemplateRuntimeError):
            render(source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 20_000_000  # bytes: the refused values would take 0.1 to 1 GB
