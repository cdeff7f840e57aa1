"""The edge guard: every JSON body (and every text) that reaches SMR passes here first.

A body is refused with 422 and the path of the offending value (``events[3].data.note``)
before any work is done and before anything is stored, when it holds what the database, the
serializer or Python itself cannot hold:

- nesting deeper than :data:`MAX_DEPTH`;
- an integer outside a signed 64-bit integer, or a number literal longer than
  :data:`MAX_NUMBER_CHARS` (Python refuses integers of over 4,300 digits with a ValueError);
  a number too large for a float (``1e400``), ``NaN``, ``Infinity``;
- a NUL character or a lone UTF-16 surrogate in a key or a string (PostgreSQL refuses the
  first, UTF-8 the second);
- a string longer than :data:`MAX_STRING_CHARS` or a key longer than :data:`MAX_KEY_CHARS`.

A body must be UTF-8 (RFC 8259), decoded strictly: that refuses a surrogate encoded as UTF-8
bytes. After that, in strict JSON, a NUL or a surrogate can only arrive as a ``\\u`` escape (raw
control characters fail the parse), so strings are searched for them only when the body has one.

Most bodies hold nothing near a bound. Those are parsed by orjson and walked once for depth
and lengths, without the parse hooks and the path bookkeeping: a body takes that fast path when
it has no run of :data:`MAX_INT_DIGITS` number characters (an integer that long may be out of
range; orjson would make it a float) and no ``\\u0000`` escape (orjson keeps a NUL). Any other
body, and any body orjson refuses or the walk finds out of bounds, takes the exact path above,
which decides what is refused and says where; both give equal values for what they accept.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any, Final

import orjson

from smr.errors import InvalidInput, field_path

MAX_DEPTH: Final = 32
MAX_NUMBER_CHARS: Final = 40
MIN_INT: Final = -(2**63)
MAX_INT: Final = 2**63 - 1
MAX_STRING_CHARS: Final = 65_536
MAX_KEY_CHARS: Final = 256

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
#: Number characters in a row that send a body down the exact path: an integer of 19 digits
#: may be outside a signed 64-bit integer, and a literal over MAX_NUMBER_CHARS is refused.
MAX_INT_DIGITS: Final = 19
_NUMBER_CHARS = bytes(int(chr(byte) in "-+.0123456789eE") for byte in range(256))
_CONTAINERS = (dict, list)
Path = Sequence[str | int]


class _Refused:
    """A number the parse hooks would not turn into a value; the walk reports where it was."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _int(text: str) -> int | _Refused:
    if len(text) > MAX_NUMBER_CHARS:
        return _Refused(f"an integer of {len(text)} characters is out of range")
    value = int(text)
    if not MIN_INT <= value <= MAX_INT:
        return _Refused(f"integer {text} is outside a signed 64-bit integer")
    return value


def _float(text: str) -> float | _Refused:
    if len(text) > MAX_NUMBER_CHARS:
        return _Refused(f"a number of {len(text)} characters is out of range")
    value = float(text)
    return value if math.isfinite(value) else _Refused(f"number {text} is out of range")


def _constant(text: str) -> _Refused:
    return _Refused(f"{text} is not a JSON number")


def unstorable(text: str) -> str | None:
    """Why ``text`` cannot be stored (a NUL, a lone surrogate), or None."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character (\\u0000)"
    return f"contains a lone surrogate (\\u{ord(found.group()):04x})"


def storable(value: Any) -> Any:
    """``value`` with every NUL and lone surrogate in its strings (keys included) replaced by
    U+FFFD: for what SMR pulls from a vendor, which it cannot refuse and must not lose."""
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(item) for item in value]
    return value


def printable(text: str, *, limit: int = 64) -> str:
    """``text`` fit to be shown in an answer: NULs and surrogates escaped, at most ``limit``."""
    shown = _UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text[:limit])
    return shown + ("…" if len(text) > limit else "")


def load_json(body: bytes | str, *, path: Path = ()) -> Any:
    """``body`` parsed as JSON within the bounds above; InvalidInput (422) otherwise, with the
    path (under ``path``) of what broke a bound."""
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    if b"\\u0000" not in raw and b"\x01" * MAX_INT_DIGITS not in raw.translate(_NUMBER_CHARS):
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # the exact path says why, and where
        else:
            if _fits([value], 0):
                return value
    return _load_exactly(body, path)


def _fits(value: dict[str, Any] | list[Any], depth: int) -> bool:
    """Whether ``value`` (as orjson parsed it) is within the depth and length bounds."""
    if depth > MAX_DEPTH:
        return False
    items: Iterable[Any] = value
    if type(value) is dict:
        for key in value:
            if len(key) > MAX_KEY_CHARS:
                return False
        items = value.values()
    for item in items:  # scalars checked inline, not by a call each: most values are
        kind = type(item)
        if kind is str:
            if len(item) > MAX_STRING_CHARS:
                return False
        elif (kind is dict or kind is list) and not _fits(item, depth + 1):
            return False
    return True


def _load_exactly(body: bytes | str, path: Path) -> Any:
    try:
        # JSON is UTF-8 (RFC 8259); strict decoding also refuses surrogates encoded as UTF-8
        # (ED A0 80), which json.loads would let through from bytes.
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        value = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except RecursionError:
        raise _invalid(path, f"is nested deeper than {MAX_DEPTH} levels") from None
    except UnicodeDecodeError as exc:
        message = f"not UTF-8 at byte {exc.start}"
        raise _invalid(path, message, detail="The body is not valid JSON.") from None
    except json.JSONDecodeError as exc:
        message = f"{exc.__class__.__name__} at character {exc.pos}: {exc}"
        raise _invalid(path, message, detail="The body is not valid JSON.") from None
    escaped = "\\u" in text
    found = _problem(value, 1, escaped)
    if found is not None:
        where, problem = found
        raise _invalid([*path, *reversed(where)], problem)
    return value


def _problem(value: Any, depth: int, escaped: bool) -> tuple[list[str | int], str] | None:
    """The reversed path to the first value out of bounds in ``value``, and why."""
    if isinstance(value, str):
        return _string_problem(value, escaped, limit=MAX_STRING_CHARS)
    if isinstance(value, _Refused):
        return [], value.reason
    if not isinstance(value, dict | list):
        return None
    if depth > MAX_DEPTH:
        return [], f"is nested deeper than {MAX_DEPTH} levels"
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        if isinstance(key, str) and (found := _string_problem(key, escaped, MAX_KEY_CHARS)):
            return [printable(key)], f"key {found[1]}"
        # Scalars are checked here rather than by a call each: most values of a body are.
        kind = type(item)
        if kind is str:
            found = _string_problem(item, escaped, MAX_STRING_CHARS)
        elif kind is int or kind is float or kind is bool or item is None:
            continue
        else:
            found = _problem(item, depth + 1, escaped)
        if found is not None:
            found[0].append(key)
            return found
    return None


def _string_problem(text: str, escaped: bool, limit: int) -> tuple[list[str | int], str] | None:
    if len(text) > limit:
        return [], f"is {len(text)} characters long; at most {limit}"
    problem = unstorable(text) if escaped else None
    return None if problem is None else ([], problem)


def _invalid(
    path: Path, message: str, *, detail: str = "The request holds a value SMR cannot take."
) -> InvalidInput:
    return InvalidInput(
        detail,
        errors=[{"path": field_path(path), "message": message}],
    )
