"""Phone numbers: one stored form per number, the forms each vendor takes, and masks for logs.

Numbers are read by libphonenumber (``phonenumbers``) with mainland China as the default region:
``13800138000``, ``+86 138-0013-8000``, ``0086 13800138000`` and ``86 138 0013 8000`` are one
mobile; ``021-12345678`` and ``+86 21 1234 5678`` are one fixed line. A number from elsewhere
needs ``+`` (or ``00``) and its country code: ``14155552671`` is not a mainland number, and is
refused rather than guessed.

The stored form (:func:`normalise`): a mainland mobile is its 11 digits (as contacts have always
stored them); every other number is E.164 (``+862112345678``, ``+85291234567``).

- Aliyun SendSms: the bare 11 digits for the mainland; country code and number, no "+",
  otherwise (SendSms: "国际/港澳台消息:国际区号+号码,例如 852000012****");
- Tencent SendSms: E.164, "+86" and the 11 digits for the mainland (PhoneNumberSet);
- replies: the stored form, so a reply finds the contact its number belongs to.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberFormat

REGION = "CN"
#: Longer input is refused before parsing (the longest E.164 number is 16 characters).
MAX_LENGTH = 32
_CHARACTERS = re.compile(r"\+?[0-9 ()./-]+")
# ASCII digits only: \d (and int()) take other scripts' digits too, and "1٣٨…" would be
# stored as written, a second contact beside "138…".
_MAINLAND_MOBILE = re.compile(r"1[0-9]{10}")
#: Runs of text worth handing to libphonenumber's matcher: seven digits or more.
_CANDIDATE = re.compile(r"\+?\(?[0-9](?:[ ()./-]?[0-9]){6,}")


class NotAPhone(ValueError):
    """The text is not a phone number; the message says why, in plain words."""


@lru_cache(maxsize=65_536)  # a parse costs ~40 µs; customers come back with the same number
def normalise(phone: str, *, region: str = REGION) -> str:
    """The stored form of ``phone``, read as written in ``region`` (an ISO 3166 code) unless it
    starts with its country code; raises NotAPhone for anything that is not a valid number."""
    text = phone.strip()
    # The form most numbers come in: what parsing would read, without parsing (4x faster).
    if region == REGION and _MAINLAND_MOBILE.fullmatch(text) and _valid_mainland(text):
        return text
    number = _parse(phone, region)
    national = str(number.national_number)
    if number.country_code == 86 and _MAINLAND_MOBILE.fullmatch(national):
        return national
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


#: libphonenumber's own pattern of mainland mobiles (its published metadata): a number that
#: matches it is a valid number, and one regular expression costs a twentieth of the checks
#: of every number type ``is_valid_number`` runs through.
def _mobile_pattern() -> tuple[re.Pattern[str], frozenset[int]]:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(REGION)
    mobile = metadata.mobile if metadata else None
    if mobile is None or mobile.national_number_pattern is None:
        raise RuntimeError(f"phonenumbers has no mobile pattern for {REGION}")
    return re.compile(mobile.national_number_pattern), frozenset(mobile.possible_length or ())


_MOBILE_PATTERN, _MOBILE_LENGTHS = _mobile_pattern()


def _valid_mainland(digits: str) -> bool:
    if len(digits) in _MOBILE_LENGTHS and _MOBILE_PATTERN.fullmatch(digits):
        return True
    return bool(
        phonenumbers.is_valid_number(PhoneNumber(country_code=86, national_number=int(digits)))
    )


def _parse(phone: str, region: str = REGION) -> PhoneNumber:
    text = phone.strip()
    if len(text) > MAX_LENGTH:
        raise NotAPhone(f"not a phone number: longer than {MAX_LENGTH} characters")
    if not _CHARACTERS.fullmatch(text) or not any(c.isdigit() for c in text):
        raise NotAPhone(
            "not a phone number: only digits, spaces, dashes and brackets, with an optional +"
        )
    try:
        number = phonenumbers.parse(text, region.upper())
    except NumberParseException:
        raise NotAPhone("not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise NotAPhone(_why_invalid(text))
    return number


def _why_invalid(text: str) -> str:
    if text.startswith(("+", "00")):
        return "not a valid phone number for its country code"
    return (
        "not a valid number in mainland China; a number from elsewhere needs + and its "
        "country code (e.g. +1 415 555 2671)"
    )


def read_in(phone: str | None, region: str | None) -> str | None:
    """The stored form of a phone written in ``region`` (an address's country, say), or None
    when it is not a valid number there."""
    try:
        return normalise(phone, region=region or REGION) if phone else None
    except NotAPhone:
        return None


def is_phone(phone: str) -> bool:
    try:
        _parse(phone)
    except NotAPhone:
        return False
    return True


def mainland(phone: str) -> str | None:
    """The 11 digits of a mainland mobile number, or None for any other number (or none)."""
    try:
        stored = normalise(phone)
    except NotAPhone:
        return None
    return stored if _MAINLAND_MOBILE.fullmatch(stored) else None


def for_aliyun(phone: str) -> str:
    return normalise(phone).lstrip("+")


def for_tencent(phone: str) -> str:
    stored = normalise(phone)
    return f"+86{stored}" if _MAINLAND_MOBILE.fullmatch(stored) else stored


def for_reply(phone: str) -> str:
    """The stored form of a number an SMS reply came from; raises NotAPhone."""
    return normalise(phone)


def mask(phone: str) -> str:
    """``13800138000`` → ``138****8000``; any other number keeps its country code and last
    four digits (``+852****4567``); text that is not a number keeps only its last four digits."""
    try:
        number = _parse(phone)
    except NotAPhone:
        digits = re.sub(r"\D", "", phone)
        return f"****{digits[-4:]}" if len(digits) > 4 else "****"
    return _masked(number)


def _masked(number: PhoneNumber) -> str:
    national = str(number.national_number)
    if number.country_code == 86 and _MAINLAND_MOBILE.fullmatch(national):
        return f"{national[:3]}****{national[-4:]}"
    return f"+{number.country_code}****{national[-4:]}"


def mask_all(text: str) -> str:
    """``text`` with every phone number in it masked (only runs of seven digits or more are
    looked at, so text without such a run costs one regular-expression scan)."""
    if not _CANDIDATE.search(text):
        return text
    found = phonenumbers.PhoneNumberMatcher(text, REGION, leniency=phonenumbers.Leniency.VALID)
    pieces, last = [], 0
    for match in found:
        # "(+86 21 1234 5678)": the matcher takes in the opening bracket, not the closing one.
        opening = "(" if match.raw_string.startswith("(") and ")" not in match.raw_string else ""
        pieces += [text[last : match.start], opening, _masked(match.number)]
        last = match.end
    text = "".join(pieces) + text[last:] if pieces else text
    text = _MOBILE_RUN.sub(lambda m: f"{m[0][:3]}****{m[0][-4:]}", text)
    return _OTHER_RUN.sub(_mask_if_phone, text)


#: What the matcher passes over (digits against letters, dotted groups): a mainland mobile's
#: 11 digits standing apart from other digits, and numbers written with + or with dots.
_MOBILE_RUN = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")
_OTHER_RUN = re.compile(r"(?<![0-9])(?:\+[0-9]{8,15}|\+?[0-9]{1,4}(?:\.[0-9]{2,5}){2,4})(?![0-9])")


def _mask_if_phone(found: re.Match[str]) -> str:
    try:
        return _masked(_parse(found[0]))
    except NotAPhone:
        return found[0]
