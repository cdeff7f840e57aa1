"""JSON text for the database reads back as ``json.dumps`` would."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smr import jsontext

_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # beyond 64 bits too
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(_json_values)
def test_values_read_back_as_through_json(value: Any) -> None:
    assert json.loads(jsontext.dumps(value)) == json.loads(json.dumps(value))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"名字": "小王", "tags": ["会员"]}, {"名字": "小王", "tags": ["会员"]}),
        ({1: "a", 2.5: "b", None: "c"}, {"1": "a", "2.5": "b", "null": "c"}),
        (2**70, 2**70),  # orjson refuses it; json takes it
        ("\ud800", "\ud800"),  # a lone surrogate, as json escapes it
    ],
)
def test_what_json_takes_is_taken(value: Any, expected: Any) -> None:
    assert json.loads(jsontext.dumps(value)) == expected


@pytest.mark.parametrize("value", [Decimal("1.5"), object(), {"at": {1, 2}}])
def test_what_neither_takes_raises_type_error(value: Any) -> None:
    with pytest.raises(TypeError):
        jsontext.dumps(value)


def test_text_is_compact_and_unescaped() -> None:
    assert jsontext.dumps({"a": [1, "好"]}) == '{"a":[1,"好"]}'
