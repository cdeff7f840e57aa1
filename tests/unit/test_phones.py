"""Phone numbers: one stored form per number, the vendor forms, refusals in plain words, masks."""

from __future__ import annotations

import pytest

from smr import phones


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("13800138000", "13800138000"),
        ("138-0013-8000", "13800138000"),
        ("138 0013 8000", "13800138000"),
        ("+8613800138000", "13800138000"),
        ("+86 138 0013 8000", "13800138000"),
        ("86 138-0013-8000", "13800138000"),
        ("0086 13800138000", "13800138000"),
        (" 13800138000 ", "13800138000"),
        ("021-12345678", "+862112345678"),
        ("(021) 1234 5678", "+862112345678"),
        ("+86 21 1234 5678", "+862112345678"),
        ("+86 021 12345678", "+862112345678"),
        ("010-12345678", "+861012345678"),
        ("+852 9123 4567", "+85291234567"),
        ("00852 9123 4567", "+85291234567"),
        ("+1 415 555 2671", "+14155552671"),
        ("+1 (415) 555-2671", "+14155552671"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_one_stored_form_per_number(given: str, stored: str) -> None:
    assert phones.normalise(given) == stored


@pytest.mark.parametrize(
    ("given", "says"),
    [
        # Eleven digits behind a 1 are not a mainland mobile unless the prefix exists.
        ("12345678901", "not a valid number in mainland China"),
        # A US number needs its +1: without it, it is read (and refused) as a mainland number.
        ("14155552671", r"needs \+ and its country code"),
        ("85291234567", "not a valid number in mainland China"),
        ("+86 123 4567 8901", "not a valid phone number for its country code"),
        ("+1 555 625 1199", "not a valid phone number for its country code"),
        ("1234", "not a valid number"),
        ("call me", "only digits, spaces, dashes and brackets"),
        ("555-555-SHIP", "only digits, spaces, dashes and brackets"),
        ("13800138000;ext=1", "only digits"),
        ("1380013800+0", "only digits"),
        ("", "only digits"),
        ("+", "only digits"),
        ("1" * 40, "longer than 32 characters"),
        # digits of another script: no second contact beside "13800138000"
        ("1\u0663\u0668\u0660\u0660\u0661\u0663\u0668\u0660\u0660\u0660", "only digits"),
    ],
)
def test_what_is_not_a_number_is_refused_in_plain_words(given: str, says: str) -> None:
    with pytest.raises(phones.NotAPhone, match=says):
        phones.normalise(given)

    assert not phones.is_phone(given)


def test_a_number_is_read_in_the_region_it_was_written_in() -> None:
    assert phones.read_in("613-612-0707", "US") == "+16136120707"
    assert phones.read_in("555-625-1199", "US") is None
    assert phones.read_in("021-12345678", None) == "+862112345678"
    assert phones.read_in("613-612-0707", "nowhere") is None
    assert phones.read_in(None, "US") is None


@pytest.mark.parametrize(
    ("stored", "aliyun", "tencent"),
    [
        ("13800138000", "13800138000", "+8613800138000"),
        ("+85291234567", "85291234567", "+85291234567"),
        ("+14155552671", "14155552671", "+14155552671"),
        ("+862112345678", "862112345678", "+862112345678"),
    ],
)
def test_vendor_forms(stored: str, aliyun: str, tencent: str) -> None:
    assert phones.for_aliyun(stored) == aliyun
    assert phones.for_tencent(stored) == tencent


def test_only_a_mainland_mobile_is_mainland() -> None:
    assert phones.mainland("+86 138 0013 8000") == "13800138000"
    assert phones.mainland("021-12345678") is None
    assert phones.mainland("12345678901") is None
    assert phones.mainland("+85291234567") is None


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13800130000", "138****0000"),
        ("+86 138 0013 0000", "138****0000"),
        ("+852 9123 4567", "+852****4567"),
        ("+14155552671", "+1****2671"),
        ("021-12345678", "+86****5678"),
        ("12345678901", "****8901"),
        ("12", "****"),
    ],
)
def test_masks_keep_the_country_code_and_the_last_four_digits(phone: str, masked: str) -> None:
    assert phones.mask(phone) == masked


def test_every_number_in_a_text_is_masked_and_nothing_else() -> None:
    text = (
        "order 42 for 13800138000 (+86 21 1234 5678, +1 415 555 2671) "
        "at 2026-11-24 10:00:00 from 192.168.100.200, 20795 runs/s"
    )

    assert phones.mask_all(text) == (
        "order 42 for 138****8000 (+86****5678, +1****2671) "
        "at 2026-11-24 10:00:00 from 192.168.100.200, 20795 runs/s"
    )
    assert phones.mask_all("no digits here") == "no digits here"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        # what libphonenumber's matcher passes over: digits against letters, dotted groups
        ("x13800138000", "x138****8000"),
        ("13800138000abc", "138****8000abc"),
        ("/v1/contacts?wecom_userid=wm13800138000", "/v1/contacts?wecom_userid=wm138****8000"),
        ("sms to +86.138.0013.8000", "sms to 138****8000"),
        ("on 2026.12.06 at 10.30, id 1733500000000", "on 2026.12.06 at 10.30, id 1733500000000"),
    ],
)
def test_a_number_the_matcher_passes_over_is_masked_too(text: str, masked: str) -> None:
    assert phones.mask_all(text) == masked
