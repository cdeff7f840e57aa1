"""Replies customers send back by SMS (上行短信), as each vendor pushes them to us.

- Aliyun, SmsUp by HTTP batch push (help.aliyun.com/zh/sms/developer-reference/smsup-http):
  a JSON array of ``{"phone_number", "content", "send_time", "sign_name", "dest_code",
  "sequence_id"}``, ``send_time`` like "2017-09-01 00:00:00" in Beijing time, ``sequence_id``
  a number or a string; it expects ``{"code": 0, "msg": "接收成功"}`` (only ``code`` is
  checked) and pushes again after 1, 5 and 10 minutes while the answer is not HTTP 200.
- Tencent Cloud, 短信回复 callback (cloud.tencent.com/document/api/382/59179): one JSON object
  ``{"extend", "mobile", "nationcode", "sign", "text", "time"}``, ``time`` in unix seconds;
  it expects ``{"result": 0, "errmsg": "OK"}``.

Both may push a reply more than once, so each Reply has a stable ``reply_id``: the vendor's
sequence id where there is one, else a digest of phone, time and text.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from smr import phones
from smr.schemas import EARLIEST, LATEST

#: Aliyun's send_time carries no offset; it is China Standard Time (no daylight saving).
BEIJING = timezone(timedelta(hours=8))
ALIYUN_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y%m%d%H%M%S")
ACKNOWLEDGEMENTS: dict[str, dict[str, object]] = {
    "aliyun": {"code": 0, "msg": "接收成功"},
    "tencent": {"result": 0, "errmsg": "OK"},
}
PROVIDERS = tuple(ACKNOWLEDGEMENTS)


@dataclass(frozen=True, slots=True)
class Reply:
    phone: str
    text: str
    received_at: datetime | None
    reply_id: str


class ReplyFormatError(ValueError):
    """The body is not what the vendor documents; ``path`` points at the offending part."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def parse_replies(provider: str, body: bytes) -> list[Reply]:
    """The replies in a vendor's push. Raises ReplyFormatError for a malformed body."""
    if provider not in ACKNOWLEDGEMENTS:
        raise ValueError(f"unknown SMS provider {provider!r}")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReplyFormatError("$", f"not JSON ({exc})") from None
    return replies_in(provider, data)


def replies_in(provider: str, data: Any) -> list[Reply]:
    """The replies in a push already parsed as JSON. Raises ReplyFormatError."""
    if provider not in ACKNOWLEDGEMENTS:
        raise ValueError(f"unknown SMS provider {provider!r}")
    if provider == "aliyun":
        if not isinstance(data, list):
            raise ReplyFormatError("$", "Aliyun pushes a JSON array of SmsUp messages")
        return [_aliyun(item, f"$[{i}]") for i, item in enumerate(data)]
    return [_tencent(data, "$")]


def acknowledgement(provider: str) -> dict[str, object]:
    """The JSON body the vendor expects in answer to a push."""
    if provider not in ACKNOWLEDGEMENTS:
        raise ValueError(f"unknown SMS provider {provider!r}")
    return dict(ACKNOWLEDGEMENTS[provider])


def _aliyun(item: object, path: str) -> Reply:
    fields = _object(item, path)
    number = _text(fields, "phone_number", path)
    text = _text(fields, "content", path, allow_empty=True)
    sent = _optional(fields, "send_time", path)
    at = _aliyun_time(sent, f"{path}.send_time") if sent else None
    phone = _phone(number, f"{path}.phone_number")
    sequence = _optional(fields, "sequence_id", path)
    reply_id = f"aliyun:{sequence}" if sequence else _digest("aliyun", phone, sent or "", text)
    return Reply(phone=phone, text=text, received_at=at, reply_id=reply_id)


def _tencent(item: object, path: str) -> Reply:
    fields = _object(item, path)
    mobile = _text(fields, "mobile", path)
    code = _text(fields, "nationcode", path).lstrip("+")
    text = _text(fields, "text", path, allow_empty=True)
    seconds = _optional(fields, "time", path)
    at = _unix_time(seconds, f"{path}.time") if seconds else None
    phone = _phone(f"+{code}{mobile}", f"{path}.mobile")
    return Reply(phone, text, at, _digest("tencent", phone, seconds or "", text))


def _phone(number: str, path: str) -> str:
    try:
        return phones.for_reply(number)
    except phones.NotAPhone as exc:
        raise ReplyFormatError(path, str(exc)) from None


def _object(item: object, path: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise ReplyFormatError(path, "expected a JSON object")
    return item


def _text(fields: dict[str, Any], key: str, path: str, *, allow_empty: bool = False) -> str:
    value = _optional(fields, key, path)
    if value is None or (not value and not allow_empty):
        raise ReplyFormatError(f"{path}.{key}", "missing")
    return value


def _optional(fields: dict[str, Any], key: str, path: str) -> str | None:
    """A string or number field as text; None when absent or null."""
    value = fields.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ReplyFormatError(f"{path}.{key}", f"expected a string, not {type(value).__name__}")
    return str(value)


def _aliyun_time(value: str, path: str) -> datetime:
    for layout in ALIYUN_TIME_FORMATS:
        try:
            at = datetime.strptime(value, layout).replace(tzinfo=BEIJING).astimezone(UTC)
        except (ValueError, OverflowError):  # 0001-01-01 00:00:00 in Beijing is before year 1
            continue
        return _in_bounds(at, value, path)
    raise ReplyFormatError(path, f"not a time like 2017-09-01 00:00:00: {value!r}")


def _unix_time(value: str, path: str) -> datetime:
    if not (value.isascii() and value.isdigit()) or len(value) > 12:
        raise ReplyFormatError(path, f"not unix seconds: {value[:40]!r}")
    try:
        at = datetime.fromtimestamp(int(value), UTC)
    except (ValueError, OverflowError, OSError):
        raise ReplyFormatError(path, f"unix seconds out of range: {value!r}") from None
    return _in_bounds(at, value, path)


def _in_bounds(at: datetime, value: str, path: str) -> datetime:
    if not EARLIEST <= at < LATEST:
        bounds = f"{EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d} (UTC)"
        raise ReplyFormatError(path, f"{value!r} is outside {bounds}")
    return at


def _digest(provider: str, phone: str, time: str, text: str) -> str:
    digest = hashlib.sha256("\n".join((phone, time, text)).encode()).hexdigest()
    return f"{provider}:{digest[:32]}"
