"""WeCom's callback encryption (加解密方案), written from the published algorithm.

- ``msg_signature = sha1("".join(sorted([token, timestamp, nonce, ciphertext])))``, lowercase hex.
- AES-256-CBC; ``key = base64decode(EncodingAESKey + "=")`` (32 bytes); ``IV = key[:16]``.
- plaintext = 16 random bytes ‖ 4-byte big-endian message length ‖ message ‖ receive id,
  PKCS#7-padded to a multiple of **32** bytes (not AES's 16); the ciphertext is base64.
- The receive id is the corp id for a self-built app's callbacks.

The signature is checked before anything is decrypted: the padding check cannot become an
oracle for someone who does not hold the token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import string

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from smr.inbound.wecom import xmltree
from smr.inbound.wecom.errors import (
    InvalidAesKey,
    InvalidPadding,
    InvalidSignature,
    MalformedCallback,
    WrongReceiveId,
)

#: The PKCS#7 block WeCom pads to.
BLOCK = 32
PREFIX = 16  # random bytes before the length
LENGTH = 4

_REPLY = (
    "<xml>\n"
    "<Encrypt><![CDATA[{encrypt}]]></Encrypt>\n"
    "<MsgSignature><![CDATA[{signature}]]></MsgSignature>\n"
    "<TimeStamp>{timestamp}</TimeStamp>\n"
    "<Nonce><![CDATA[{nonce}]]></Nonce>\n"
    "</xml>"
)


def aes_key_bytes(encoding_aes_key: str) -> bytes:
    """The AES key an EncodingAESKey (43 characters of base64) stands for."""
    if len(encoding_aes_key) != 43:
        raise InvalidAesKey
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except (binascii.Error, ValueError):
        raise InvalidAesKey from None
    if len(key) != 32:
        raise InvalidAesKey
    return key


def fresh_nonce() -> str:
    return "".join(secrets.choice(string.digits) for _ in range(10))


class WXBizMsgCrypt:
    """Signs, verifies, encrypts and decrypts WeCom callback payloads for one receive id.

    Raises InvalidAesKey at construction; the methods raise the CallbackError subclasses.
    ``repr()`` shows the receive id only.
    """

    __slots__ = ("_cipher", "_receive_id", "_token", "receive_id")

    def __init__(self, *, token: str, encoding_aes_key: str, receive_id: str) -> None:
        key = aes_key_bytes(encoding_aes_key)
        self._token = token
        self._cipher = Cipher(algorithms.AES(key), modes.CBC(key[:16]))
        self.receive_id = receive_id
        self._receive_id = receive_id.encode()

    def __repr__(self) -> str:
        return f"WXBizMsgCrypt(receive_id={self.receive_id!r})"

    def signature(self, *, timestamp: str, nonce: str, encrypted: str) -> str:
        joined = "".join(sorted([self._token, timestamp, nonce, encrypted]))
        return hashlib.sha1(joined.encode()).hexdigest()  # noqa: S324 - the protocol's hash

    def verify(self, msg_signature: str, *, timestamp: str, nonce: str, encrypted: str) -> None:
        """Raises InvalidSignature unless ``msg_signature`` signs these values."""
        expected = self.signature(timestamp=timestamp, nonce=nonce, encrypted=encrypted)
        if not hmac.compare_digest(expected.encode(), msg_signature.encode(errors="replace")):
            raise InvalidSignature

    def encrypt(self, message: str, *, prefix: bytes | None = None) -> str:
        """``message`` as WeCom's base64 ciphertext; ``prefix`` (16 bytes) defaults to random."""
        prefix = secrets.token_bytes(PREFIX) if prefix is None else prefix
        if len(prefix) != PREFIX:
            raise ValueError(f"the random prefix must be {PREFIX} bytes")
        data = message.encode()
        plain = prefix + len(data).to_bytes(LENGTH, "big") + data + self._receive_id
        pad = BLOCK - len(plain) % BLOCK
        encryptor = self._cipher.encryptor()
        raw = encryptor.update(plain + bytes([pad]) * pad) + encryptor.finalize()
        return base64.b64encode(raw).decode("ascii")

    def decrypt(self, encrypted: str) -> str:
        """The message inside a base64 ciphertext, after checking padding and receive id.

        Raises MalformedCallback, InvalidPadding or WrongReceiveId.
        """
        try:
            raw = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedCallback("The ciphertext is not valid base64.") from None
        if not raw or len(raw) % BLOCK:
            raise MalformedCallback(f"The ciphertext is not a multiple of {BLOCK} bytes.")
        decryptor = self._cipher.decryptor()
        plain = _unpad(decryptor.update(raw) + decryptor.finalize())
        return self._unwrap(plain)

    def _unwrap(self, plain: bytes) -> str:
        if len(plain) < PREFIX + LENGTH:
            raise MalformedCallback("The decrypted message is too short.")
        length = int.from_bytes(plain[PREFIX : PREFIX + LENGTH], "big")
        end = PREFIX + LENGTH + length
        if end > len(plain):
            raise MalformedCallback("The decrypted message is shorter than its length field.")
        if plain[end:] != self._receive_id:
            raise WrongReceiveId
        try:
            return plain[PREFIX + LENGTH : end].decode()
        except UnicodeDecodeError:
            raise MalformedCallback("The decrypted message is not UTF-8.") from None

    def verify_url(self, *, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """URL verification (GET): the plaintext to answer, exactly as it is."""
        # echostr is base64 and never holds a space: a "+" that reached us unescaped is one.
        echostr = echostr.replace(" ", "+")
        self.verify(msg_signature, timestamp=timestamp, nonce=nonce, encrypted=echostr)
        return self.decrypt(echostr)

    def decrypt_msg(self, body: bytes, *, msg_signature: str, timestamp: str, nonce: str) -> str:
        """The inner XML of a POSTed ``<xml><ToUserName/><Encrypt/><AgentID/></xml>`` body."""
        root = xmltree.parse(body)
        encrypted = root.findtext("Encrypt")
        if root.tag != "xml" or not encrypted:
            raise MalformedCallback("The body is not <xml> with an <Encrypt> element.")
        self.verify(msg_signature, timestamp=timestamp, nonce=nonce, encrypted=encrypted)
        return self.decrypt(encrypted)

    def encrypt_msg(self, reply: str, *, timestamp: int, nonce: str | None = None) -> str:
        """A passive reply: ``reply`` encrypted and signed in WeCom's reply envelope."""
        nonce = fresh_nonce() if nonce is None else nonce
        if not (nonce.isascii() and nonce.isalnum()):
            raise ValueError("the nonce must be letters and digits")
        encrypted = self.encrypt(reply)
        signature = self.signature(timestamp=str(timestamp), nonce=nonce, encrypted=encrypted)
        return _REPLY.format(
            encrypt=encrypted, signature=signature, timestamp=timestamp, nonce=nonce
        )


def _unpad(padded: bytes) -> bytes:
    pad = padded[-1]
    if not 1 <= pad <= BLOCK or padded[-pad:] != bytes([pad]) * pad:
        raise InvalidPadding
    return padded[:-pad]
