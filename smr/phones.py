"""Phone numbers as each vendor takes them.

Contacts keep the phone as it came in ("13800138000", "+8613800138000", "86 138-0013-8000").
A mainland mobile is 11 digits starting with 1, optionally behind +86, 86 or 0086.

- Aliyun SendSms: the bare 11 digits for the mainland; country code and number, no "+",
  otherwise (SendSms: "国际/港澳台消息:国际区号+号码,例如 852000012****");
- Tencent SendSms: E.164, "+86" and the 11 digits for the mainland (PhoneNumberSet);
- replies: the bare 11 digits for the mainland, as contacts usually store them.
"""

from __future__ import annotations

import re

_MAINLAND = re.compile(r"(?:\+86|0086|86)?(1\d{10})")
_PHONE = re.compile(r"\+?\d{5,20}")


def clean(phone: str) -> str:
    return re.sub(r"[\s\-()]", "", phone)


def mainland(phone: str) -> str | None:
    """The 11 digits of a mainland mobile number, or None for any other number."""
    found = _MAINLAND.fullmatch(clean(phone))
    return found.group(1) if found else None


def is_phone(phone: str) -> bool:
    return _PHONE.fullmatch(clean(phone)) is not None


def international(phone: str) -> str:
    """Country code and number, digits only (a leading "+" or "00" dropped)."""
    digits = clean(phone).lstrip("+")
    return digits[2:] if digits.startswith("00") else digits


def for_aliyun(phone: str) -> str:
    return mainland(phone) or international(phone)


def for_tencent(phone: str) -> str:
    found = mainland(phone)
    return f"+86{found}" if found else f"+{international(phone)}"


def for_reply(phone: str) -> str:
    return mainland(phone) or phone
