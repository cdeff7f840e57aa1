"""The edge guard (smr.edge) and the bounds of durations and playbook text."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import yaml

from smr.edge import MAX_DEPTH, load_json
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
    assert refusal(b"[" + nested + b"]")["message"] == f"is nested deeper than {MAX_DEPTH} levels"
    assert load_json(b'{"ok": "\\ud83d\\ude00", "n": -9223372036854775808}') == {
        "ok": "😀",
        "n": -(2**63),
    }


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
