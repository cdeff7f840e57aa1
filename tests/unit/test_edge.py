"""The edge guard (smr.edge) and the bounds of durations and playbook text."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from smr import edge
from smr.edge import MAX_DEPTH, MAX_INT, MAX_KEY_CHARS, MAX_STRING_CHARS, MIN_INT, load_json
from smr.errors import InvalidInput
from smr.playbooks.timespec import MAX_DURATION, DurationTooLong, parse_duration
from smr.playbooks.yaml_loader import compose_document


def refusal(body: bytes | str) -> dict[str, Any]:
    with pytest.raises(InvalidInput) as caught:
        load_json(body)
    (error,) = caught.value.errors
    return error


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        (b'{"a": [1, {"b": "x\\u0000"}]}', "a[1].b", "NUL"),
        (b'{"x": "\\ud800"}', "x", "lone surrogate"),
        (b'{"x": "\\udc00\\ud83d"}', "x", "lone surrogate"),
        (b'{"k\\u0000": 1}', "k\\u0000", "key contains a NUL"),
        (b'{"n": ' + b"1" * 5000 + b"}", "n", "out of range"),
        (b'{"n": 9223372036854775808}', "n", "signed 64-bit"),
        (b'{"n": 1e400}', "n", "out of range"),
        (b'{"n": NaN}', "n", "not a JSON number"),
        (b'{"n": -Infinity}', "n", "not a JSON number"),
        (b"[" * 1000 + b"]" * 1000, "(body)", "nested deeper"),
        (b"[" * 100_000 + b"]" * 100_000, "(body)", "nested deeper"),
        (b'{"x": "' + b"a" * 70_000 + b'"}', "x", "at most"),
        (b'[{"x": "' + b"a" * 65_537 + b'"}]', "[0].x", "65537 characters long"),
        (b'{"' + b"k" * 257 + b'": 1}', "k" * 64 + "…", "key is 257 characters long"),
        (b'{"n": [' + b"9" * 19 + b"]}", "n[0]", "signed 64-bit"),
        (b'{"x": 1', "(body)", "JSONDecodeError"),
        (b'"\xff"', "(body)", "not UTF-8 at byte 1"),
        # a surrogate encoded as UTF-8: json.loads(bytes) would decode it into the string
        (b'{"x": "a\xed\xa0\x80"}', "(body)", "not UTF-8 at byte 8"),
        ('{"x": 1}'.encode("utf-16"), "(body)", "not UTF-8"),
    ],
)
def test_what_cannot_be_held_is_refused_with_its_path(body: bytes, path: str, message: str) -> None:
    error = refusal(body)
    assert error["path"] == path
    assert message in error["message"]


def test_nesting_up_to_the_bound_and_a_surrogate_pair_are_taken() -> None:
    nested = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert load_json(nested) is not None
    longest = {"k" * MAX_KEY_CHARS: "v" * MAX_STRING_CHARS, "n": [MAX_INT, MIN_INT]}
    assert load_json(json.dumps(longest).encode()) == longest
    assert refusal(b"[" + nested + b"]")["message"] == f"is nested deeper than {MAX_DEPTH} levels"
    assert load_json(b'{"ok": "\\ud83d\\ude00", "n": -9223372036854775808}') == {
        "ok": "😀",
        "n": -(2**63),
    }


# Bodies near every bound: numbers around 64 bits and long literals, NULs and lone surrogates,
# keys and strings around their lengths, nesting around the depth.
_numbers = st.integers(min_value=-(2**66), max_value=2**66) | st.floats(allow_nan=False)
_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=8)
_long_key = st.integers(MAX_KEY_CHARS - 1, MAX_KEY_CHARS + 1).map(lambda n: "k" * n)
_values = st.recursive(
    st.none() | st.booleans() | _numbers | _text,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(_text | _long_key, inner, max_size=3)
    ),
    max_leaves=12,
)


@st.composite
def _bodies(draw: st.DrawFn) -> bytes:
    value = draw(_values)
    for _ in range(draw(st.sampled_from([0, 0, MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1]))):
        value = [value]
    text = json.dumps(value, ensure_ascii=draw(st.booleans()))
    if draw(st.booleans()):  # a literal the stdlib would not write: long, huge or not a number
        literal = draw(st.sampled_from(["1" * 41, "1e400", "-1e-400", "NaN", "0." + "5" * 30]))
        text = f"[{text}, {literal}]"
    return text.encode("utf-8", "surrogatepass")


def _outcome(body: bytes) -> tuple[str, Any]:
    try:
        return "taken", _typed(load_json(body))
    except InvalidInput as refused:
        return "refused", refused.errors


def _typed(value: Any) -> Any:
    if isinstance(value, dict):
        return [(key, _typed(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [_typed(item) for item in value]
    return type(value).__name__, repr(value)


@given(_bodies())
def test_the_fast_path_takes_and_refuses_what_the_exact_path_does(body: bytes) -> None:
    try:
        exact: tuple[str, Any] = "taken", _typed(edge._load_exactly(body, ()))
    except InvalidInput as refused:
        exact = "refused", refused.errors
    assert _outcome(body) == exact


def test_the_path_of_a_refused_value_lies_under_a_prefix() -> None:
    with pytest.raises(InvalidInput) as caught:
        load_json('{"a": "\\u0000"}', path=("msg",))
    assert caught.value.errors[0]["path"] == "msg.a"


@pytest.mark.parametrize("text", ["3651d", "87601h", "315360001s", "99999999999999999999d"])
def test_a_duration_over_ten_years_is_refused(text: str) -> None:
    with pytest.raises(DurationTooLong, match="over the bound of 3650d"):
        parse_duration(text)


def test_ten_years_is_the_longest_duration() -> None:
    assert parse_duration("3650d") == MAX_DURATION == timedelta(days=3650)


@pytest.mark.parametrize(("escape", "problem"), [("\\0", "NUL"), ("\\ud800", "lone surrogate")])
def test_playbook_text_that_cannot_be_stored_fails_the_load_at_its_place(
    escape: str, problem: str
) -> None:
    with pytest.raises(yaml.constructor.ConstructorError) as caught:
        compose_document(f'id: x\nname: "a{escape}b"\n')
    assert problem in str(caught.value)
    assert caught.value.problem_mark is not None
    assert (caught.value.problem_mark.line, caught.value.problem_mark.column) == (1, 6)
