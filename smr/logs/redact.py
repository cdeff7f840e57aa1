"""What never reaches a log: secrets and whole phone numbers.

Every record passes :class:`Redact` (installed by :func:`smr.logs.configure` on the handler,
and on the ``uvicorn.access`` and ``httpx`` loggers, which log whole URLs):

- the value of every ``key=value`` whose key names a secret (``token``, ``sign``, ``signature``,
  ``msg_signature``, ``echostr``, ``access_token``, ``corpsecret``, ``AccessKeyId``, …) becomes
  ``[redacted]``, and a bearer token after ``Bearer``;
- the value of a ``phone=`` / ``mobile=`` / ``PhoneNumbers=`` pair, and every phone number
  anywhere else in the text, is masked: ``138****0000``, ``+852****4567``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from urllib.parse import unquote_plus

from smr import phones

REDACTED = "[redacted]"
#: A key containing one of these names a secret (case aside): ``token`` covers ``access_token``
#: and ``suite_token``, ``sign`` covers ``signature``, ``msg_signature`` and ``SignatureNonce``.
SECRET_WORDS = (
    "token",
    "secret",
    "sign",
    "password",
    "passwd",
    "key",
    "echostr",
    "encrypt",
    "auth",
    "credential",
    "ticket",
    "session",
    "cookie",
)
PHONE_WORDS = ("phone", "mobile", "tel")
# A key may be percent-encoded (``?%74oken=`` is ``token``); a value runs to the next ``&``,
# space or quote (``;``, ``,`` and ``)`` may be part of a secret).
_PAIR = re.compile(r"(?P<key>[A-Za-z_%][\w.\-\[\]%]*)=(?P<value>[^&\s\"'#]*)")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[\w.~+/=-]+")
_FORMATTER = logging.Formatter()


def is_secret(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in SECRET_WORDS)


def _pair(found: re.Match[str]) -> str:
    key, value = found["key"], found["value"]
    lowered = unquote_plus(key).lower()
    if not value or value in ("***", REDACTED):  # blank, or blanked already
        return found[0]
    if is_secret(lowered):
        return f"{key}={REDACTED}"
    if any(word in lowered for word in PHONE_WORDS):
        return f"{key}={','.join(phones.mask(v) for v in unquote_plus(value).split(','))}"
    if "%" in value or "+" in value:
        decoded = unquote_plus(value)
        masked = phones.mask_all(decoded)
        return f"{key}={masked}" if masked != decoded else found[0]
    return found[0]


def redact(text: str) -> str:
    """``text`` without secrets or whole phone numbers."""
    if "=" in text:
        text = _PAIR.sub(_pair, text)
    if "earer" in text:
        text = _BEARER.sub(rf"\1 {REDACTED}", text)
    return phones.mask_all(text)


class Redact(logging.Filter):
    """Redacts each record in place; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "smr_redacted", False):
            return True
        record.smr_redacted = True
        _redact_message(record)
        if record.exc_info and not record.exc_text:
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _redact_message(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a call whose arguments do not fit its format: logging reports it
        return
    clean = redact(message)
    if clean == message:
        return
    # Keep the arguments where redacting each one is enough (uvicorn's access formatter reads
    # them by position); otherwise the record carries the redacted text alone.
    args = _each_redacted(record.args)
    if args:
        record.args = args
        if record.getMessage() == clean:
            return
    record.msg, record.args = clean, ()


def _each_redacted(
    args: tuple[object, ...] | Mapping[str, object] | None,
) -> tuple[object, ...] | None:
    if not isinstance(args, tuple) or not all(isinstance(a, str | int | float) for a in args):
        return None
    return tuple(redact(a) if isinstance(a, str) else a for a in args)
