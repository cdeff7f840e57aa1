from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from smr.playbooks import (
    ContactStats,
    ContactView,
    EventView,
    TemplateCompileError,
    TemplateRuntimeError,
    compile_expression,
    compile_template,
)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ ''.__class__ }}", "access to '__class__' is not allowed"),
        ("{{ ''.__class__.__mro__ }}", "access to '__mro__' is not allowed"),
        ("{{ contact['__globals__'] }}", "access to '__globals__' is not allowed"),
        ("{{ cycler.__init__.__globals__ }}", "access to '__globals__' is not allowed"),
        ("{{ contact | attr('__dict__') }}", "access to '__dict__' is not allowed"),
        ("{{ contact._private }}", "access to '_private' is not allowed"),
        ("{{ event.mro }}", "access to 'mro' is not allowed"),
        ("{% include 'x.txt' %}", "extends, include and import are not allowed"),
        (
            "{{ contcat.name }}",
            "unknown name 'contcat' (available: contact, event, trigger, run, now, vars)",
        ),
        ("{{ range(3) }}", "unknown name 'range'"),
    ],
)
def test_template_refused_at_compile(source: str, message: str) -> None:
    with pytest.raises(TemplateCompileError) as caught:
        compile_template(source)
    assert message in caught.value.message


def test_escape_is_refused_before_any_global_lookup() -> None:
    # cycler is also an unknown name; the unsafe attribute is what must be reported.
    with pytest.raises(TemplateCompileError, match="is not allowed"):
        compile_template("{{ cycler.__init__.__globals__.os }}")


@pytest.mark.parametrize(
    ("source", "lineno"),
    [("{{ contact.name", 1), ("ok\n\n{% if %}", 3), ("a\n{{ nope }}", 2)],
)
def test_template_compile_error_line(source: str, lineno: int) -> None:
    with pytest.raises(TemplateCompileError) as caught:
        compile_template(source)
    assert caught.value.lineno == lineno


def test_names_bound_inside_template_are_allowed() -> None:
    template = compile_template(
        "{% set greeting = 'hi' %}{% for t in contact.tags %}{{ greeting }} {{ t }};{% endfor %}"
    )
    assert template.render({"contact": {"tags": ["a", "b"]}}) == "hi a;hi b;"


@pytest.mark.parametrize("source", ["1 +", "1 2", "contact.x >", "x.__class__"])
def test_expression_refused_at_compile(source: str) -> None:
    with pytest.raises(TemplateCompileError):
        compile_expression(source)


@pytest.mark.parametrize(
    ("source", "context", "expected"),
    [
        ("contact.orders > 1", {"contact": {"orders": 2}}, True),
        ("'A' in event.skus", {"event": {"skus": ["B"]}}, False),
        ("contact.points | default(0) + 1", {"contact": {}}, 1),
        ("vars.shop", {"vars": {"shop": "某某"}}, "某某"),
    ],
)
def test_expression_evaluates(source: str, context: dict[str, Any], expected: object) -> None:
    assert compile_expression(source).evaluate(context) == expected


@pytest.mark.parametrize(
    ("source", "context", "message"),
    [
        ("contact.missing", {"contact": {}}, "has no attribute 'missing'"),
        ("contact.missing > 1", {"contact": {}}, "has no attribute 'missing'"),
        ("1 / contact.n", {"contact": {"n": 0}}, "ZeroDivisionError"),
        ("contact.n + 'x'", {"contact": {"n": 1}}, "TypeError"),
    ],
)
def test_expression_runtime_errors(source: str, context: dict[str, Any], message: str) -> None:
    with pytest.raises(TemplateRuntimeError, match=message):
        compile_expression(source).evaluate(context)


def test_template_runtime_error_is_wrapped() -> None:
    with pytest.raises(TemplateRuntimeError, match="has no attribute 'nme'"):
        compile_template("{{ contact.nme }}").render({"contact": {"name": "x"}})


def test_compile_is_cached_and_keeps_source() -> None:
    template = compile_template("{{ contact.name }}")
    assert template is compile_template("{{ contact.name }}")
    assert template.source == "{{ contact.name }}"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("(vars.launch | date - now | date).days", 3),
        ("('2026-11-23T09:00:00+08:00' | date).isoformat()", "2026-11-23"),
        ("(now | date).strftime('%m-%d')", "11-23"),
    ],
)
def test_the_date_filter_counts_days(source: str, expected: object) -> None:
    now = datetime(2026, 11, 23, 23, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    context = {"vars": {"launch": "2026-11-26"}, "now": now}
    assert compile_expression(source).evaluate(context) == expected


def test_the_date_filter_refuses_what_is_not_a_date() -> None:
    with pytest.raises(TemplateRuntimeError, match="ValueError"):
        compile_expression("vars.launch | date").evaluate({"vars": {"launch": "soon"}})


def test_a_missing_key_is_missing_not_the_dicts_method() -> None:
    with pytest.raises(TemplateRuntimeError, match="'items'"):
        compile_template("{{ event.data['items'][0] }}").render({"event": {"data": {}}})
    rendered = compile_template("{{ event.data['items'] | default('none') }}")
    assert rendered.render({"event": {"data": {}}}) == "none"


def test_view_fields_read_as_data_and_their_methods_stay_guarded() -> None:
    event = EventView(
        id="e1",
        type="order.paid",
        occurred_at=datetime(2026, 12, 7, tzinfo=ZoneInfo("Asia/Shanghai")),
        data={"items": [{"sku": "A", "quantity": 2}]},
    )
    contact = ContactView(id="c1", name="小王", stats=ContactStats(orders=3))
    context = {"event": event, "contact": contact}
    assert compile_expression("event.data").evaluate(context) is event.data
    assert (
        compile_expression("contact.stats.orders + event.quantity_of('A')").evaluate(context) == 5
    )
    assert compile_template("{{ event.skus | join(',') }}").render(context) == "A"
    # What a field holds is still data under the immutable sandbox: no mutation through it.
    with pytest.raises(TemplateRuntimeError, match="unsafe"):
        compile_expression("contact.tags.append('x')").evaluate(context)
    assert contact.tags == []
