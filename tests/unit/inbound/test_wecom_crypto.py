"""WXBizMsgCrypt against the official example, and properties over every padding length."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smr.inbound.wecom import (
    CallbackError,
    InvalidAesKey,
    InvalidPadding,
    InvalidSignature,
    MalformedCallback,
    WrongReceiveId,
    WXBizMsgCrypt,
    xmltree,
)
from tests.unit.inbound import wecom_support as v

PROPERTIES = settings(database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEY = base64.b64decode(v.AES_KEY + "=")
ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=0, max_size=40)


def raw_decrypt(encrypted: str) -> bytes:
    decryptor = Cipher(algorithms.AES(KEY), modes.CBC(KEY[:16])).decryptor()
    return decryptor.update(base64.b64decode(encrypted)) + decryptor.finalize()


def raw_encrypt(padded: bytes) -> str:
    encryptor = Cipher(algorithms.AES(KEY), modes.CBC(KEY[:16])).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()


# The official example (加解密方案说明).


def test_url_verification_signature_and_plaintext() -> None:
    crypt = v.official()

    signature = crypt.signature(timestamp=v.GET_TIMESTAMP, nonce=v.GET_NONCE, encrypted=v.ECHOSTR)
    plain = crypt.verify_url(
        msg_signature=v.GET_SIGNATURE,
        timestamp=v.GET_TIMESTAMP,
        nonce=v.GET_NONCE,
        echostr=v.ECHOSTR,
    )

    assert signature == v.GET_SIGNATURE
    assert plain == v.ECHO_PLAIN


def test_url_verification_accepts_an_unescaped_plus_read_as_space() -> None:
    plain = v.official().verify_url(
        msg_signature=v.GET_SIGNATURE,
        timestamp=v.GET_TIMESTAMP,
        nonce=v.GET_NONCE,
        echostr=v.ECHOSTR.replace("+", " "),
    )

    assert plain == v.ECHO_PLAIN


def test_posted_message_decrypts_to_the_exact_plaintext() -> None:
    plain = v.official().decrypt_msg(
        v.POST_BODY, msg_signature=v.POST_SIGNATURE, timestamp=v.POST_TIMESTAMP, nonce=v.POST_NONCE
    )

    assert plain == v.POST_PLAIN
    assert plain.count("\n") == 7


@pytest.mark.parametrize(
    ("plain", "prefix", "expected", "pad"),
    [
        (v.ECHO_PLAIN, v.ECHO_PREFIX, v.ECHOSTR, 7),
        (v.POST_PLAIN, v.POST_PREFIX, v.POST_ENCRYPT, 30),
    ],
)
def test_encryption_reproduces_the_official_ciphertexts(
    plain: str, prefix: bytes, expected: str, pad: int
) -> None:
    assert v.official().encrypt(plain, prefix=prefix) == expected
    assert raw_decrypt(expected)[-pad:] == bytes([pad]) * pad


# Round trips over every padding length.


@pytest.mark.parametrize("length", range(32))
def test_each_residue_mod_32_pads_to_a_whole_block(length: int) -> None:
    crypt = v.official()
    message = "x" * length

    encrypted = crypt.encrypt(message)

    padded = raw_decrypt(encrypted)
    unpadded = 16 + 4 + length + len(v.CORP_ID)
    expected_pad = 32 - unpadded % 32
    assert len(padded) % 32 == 0
    assert padded[-1] == expected_pad
    assert padded[unpadded:] == bytes([expected_pad]) * expected_pad
    assert crypt.decrypt(encrypted) == message


def test_the_residue_table_covers_every_pad_value() -> None:
    pads = {32 - (16 + 4 + n + len(v.CORP_ID)) % 32 for n in range(32)}
    assert pads == set(range(1, 33))


@PROPERTIES
@given(message=st.text(max_size=200), receive_id=ids)
def test_round_trip(message: str, receive_id: str) -> None:
    crypt = v.official(receive_id)

    assert crypt.decrypt(crypt.encrypt(message)) == message


@PROPERTIES
@given(message=st.text(max_size=100), timestamp=st.integers(0, 2**32), nonce=ids.filter(bool))
def test_passive_reply_round_trip(message: str, timestamp: int, nonce: str) -> None:
    crypt = v.official()

    reply = crypt.encrypt_msg(message, timestamp=timestamp, nonce=nonce)

    fields = {child.tag: child.text or "" for child in xmltree.parse(reply.encode())}
    assert fields["TimeStamp"] == str(timestamp)
    assert fields["Nonce"] == nonce
    body = v.envelope(fields["Encrypt"])
    opened = crypt.decrypt_msg(
        body, msg_signature=fields["MsgSignature"], timestamp=str(timestamp), nonce=nonce
    )
    assert opened == message


def test_passive_replies_get_a_fresh_nonce_and_ciphertext() -> None:
    crypt = v.official()

    first, second = (crypt.encrypt_msg("<xml/>", timestamp=1700000000) for _ in range(2))

    def nonce(reply: str) -> str | None:
        return xmltree.parse(reply.encode()).findtext("Nonce")

    assert nonce(first) != nonce(second)
    assert first != second


# Tampering and mistakes.


@PROPERTIES
@given(message=st.text(max_size=120), data=st.data())
def test_tampered_ciphertext_fails_the_signature(message: str, data: st.DataObject) -> None:
    crypt = v.official()
    encrypted = crypt.encrypt(message)
    signature = crypt.signature(timestamp="1", nonce="2", encrypted=encrypted)
    raw = bytearray(base64.b64decode(encrypted))
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] ^= data.draw(st.integers(1, 255))
    tampered = base64.b64encode(bytes(raw)).decode()

    with pytest.raises(InvalidSignature):
        crypt.decrypt_msg(v.envelope(tampered), msg_signature=signature, timestamp="1", nonce="2")


@PROPERTIES
@given(message=st.text(max_size=120), data=st.data())
def test_tampered_ciphertext_never_escapes_the_error_tree(
    message: str, data: st.DataObject
) -> None:
    crypt = v.official()
    raw = bytearray(base64.b64decode(crypt.encrypt(message)))
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] ^= data.draw(st.integers(1, 255))

    try:
        opened = crypt.decrypt(base64.b64encode(bytes(raw)).decode())
    except CallbackError:
        return
    # CBC is malleable, so a tamper may decrypt (the signature is what refuses it), but never
    # to the original message.
    assert opened != message


def test_tampered_last_block_breaks_the_padding() -> None:
    crypt = v.official()
    raw = bytearray(base64.b64decode(crypt.encrypt("hello")))
    raw[-17] ^= 0x01  # flips the last plaintext byte: the pad value

    with pytest.raises(InvalidPadding):
        crypt.decrypt(base64.b64encode(bytes(raw)).decode())


@PROPERTIES
@given(sender=ids, receiver=ids)
def test_another_receive_id_is_refused(sender: str, receiver: str) -> None:
    encrypted = v.official(sender).encrypt("<xml/>")

    if sender == receiver:
        assert v.official(receiver).decrypt(encrypted) == "<xml/>"
    else:
        with pytest.raises(WrongReceiveId):
            v.official(receiver).decrypt(encrypted)


@pytest.mark.parametrize(
    "change",
    [
        {"timestamp": "1409659590"},
        {"nonce": "263014781"},
        {"msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd4"},
        {"msg_signature": "5C45FF5E21C57E6AD56BAC8758B79B1D9AC89FD3"},
        {"msg_signature": ""},
        {"msg_signature": "签名"},
    ],
)
def test_wrong_nonce_timestamp_or_signature_is_refused(change: dict[str, str]) -> None:
    params = {
        "msg_signature": v.GET_SIGNATURE,
        "timestamp": v.GET_TIMESTAMP,
        "nonce": v.GET_NONCE,
        **change,
    }

    with pytest.raises(InvalidSignature):
        v.official().verify_url(**params, echostr=v.ECHOSTR)


def test_another_token_does_not_verify() -> None:
    with pytest.raises(InvalidSignature):
        v.official(token="other").decrypt_msg(
            v.POST_BODY,
            msg_signature=v.POST_SIGNATURE,
            timestamp=v.POST_TIMESTAMP,
            nonce=v.POST_NONCE,
        )


def _pkcs7_case(pad: bytes) -> str:
    body = b"0" * 16 + (5).to_bytes(4, "big") + b"hello" + v.CORP_ID.encode()
    filler = b"f" * (64 - len(body) - len(pad))
    return raw_encrypt(body + filler + pad)


@pytest.mark.parametrize(
    "pad",
    [b"\x00", b"\x21", b"\xff", b"\x01\x02", b"\x03\x03\x04\x03"],
    ids=["zero", "33", "255", "unequal-2", "unequal-4"],
)
def test_strict_padding(pad: bytes) -> None:
    with pytest.raises(InvalidPadding):
        v.official().decrypt(_pkcs7_case(pad))


@pytest.mark.parametrize(
    ("encrypted", "problem"),
    [
        ("not base64!", "base64"),
        ("", "multiple of 32"),
        (base64.b64encode(b"x" * 16).decode(), "multiple of 32"),
        (base64.b64encode(b"x" * 48).decode(), "multiple of 32"),
    ],
)
def test_malformed_ciphertext(encrypted: str, problem: str) -> None:
    with pytest.raises(MalformedCallback, match=problem):
        v.official().decrypt(encrypted)


@pytest.mark.parametrize(
    ("plain", "problem"),
    [
        (b"0" * 16 + (500).to_bytes(4, "big") + b"short", "length field"),
        (b"0" * 16 + (2).to_bytes(4, "big") + b"\xff\xfe" + v.CORP_ID.encode(), "UTF-8"),
        (b"0" * 10, "too short"),
    ],
)
def test_impossible_plaintexts(plain: bytes, problem: str) -> None:
    pad = 32 - len(plain) % 32

    with pytest.raises(MalformedCallback, match=problem):
        v.official().decrypt(raw_encrypt(plain + bytes([pad]) * pad))


@pytest.mark.parametrize(
    "body",
    [
        b"garbage",
        b"<xml><ToUserName>x</ToUserName></xml>",
        b"<notxml><Encrypt>abc</Encrypt></notxml>",
        b'<!DOCTYPE xml [<!ENTITY e "boom">]><xml><Encrypt>&e;</Encrypt></xml>',
        b'<!DOCTYPE xml SYSTEM "file:///etc/passwd"><xml><Encrypt>a</Encrypt></xml>',
    ],
)
def test_malformed_envelopes(body: bytes) -> None:
    with pytest.raises(MalformedCallback):
        v.official().decrypt_msg(body, msg_signature="x", timestamp="1", nonce="2")


# Secrets stay secret.


@pytest.mark.parametrize("key", ["short", v.AES_KEY[:-1] + "!", v.AES_KEY + "A", "a" * 42 + "="])
def test_invalid_aes_key_is_refused_without_quoting_it(key: str) -> None:
    with pytest.raises(InvalidAesKey) as caught:
        WXBizMsgCrypt(token=v.TOKEN, encoding_aes_key=key, receive_id=v.CORP_ID)

    assert key not in str(caught.value)
    assert "43 characters" in str(caught.value)


def test_repr_and_errors_never_show_the_token_or_key() -> None:
    crypt = v.official()
    shown = [repr(crypt), str(crypt)]
    failures: list[Callable[[], str]] = [
        lambda: crypt.verify_url(msg_signature="x", timestamp="1", nonce="2", echostr=v.ECHOSTR),
        lambda: v.official("other").decrypt(v.ECHOSTR),
        lambda: crypt.decrypt(_pkcs7_case(b"\x00")),
    ]
    for call in failures:
        with pytest.raises(CallbackError) as caught:
            call()
        shown += [str(caught.value), repr(caught.value)]

    assert repr(crypt) == f"WXBizMsgCrypt(receive_id='{v.CORP_ID}')"
    assert not [s for s in shown if v.TOKEN in s or v.AES_KEY in s or KEY.hex() in s]
