"""Why a WeCom callback was refused. Messages are fixed texts: they never quote a secret.

CallbackError
├── InvalidSignature    msg_signature does not match token, timestamp, nonce and ciphertext
├── InvalidPadding      the decrypted PKCS#7 padding is wrong (tampered data or another key)
├── WrongReceiveId      it decrypts, but is addressed to another corp
└── MalformedCallback   not base64, not XML, impossible lengths, a required field missing

InvalidAesKey (a ValueError) is a configuration error: the EncodingAESKey is not 43 characters
of base64 that decode to 32 bytes.
"""

from __future__ import annotations


class CallbackError(Exception):
    """The callback cannot be trusted or read."""

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or (self.__doc__ or "").strip()
        super().__init__(self.detail)


class InvalidSignature(CallbackError):
    """The msg_signature does not verify."""


class InvalidPadding(CallbackError):
    """The decrypted message has invalid PKCS#7 padding."""


class WrongReceiveId(CallbackError):
    """The message is addressed to another receive id (corp)."""


class MalformedCallback(CallbackError):
    """The callback is not in the WeCom format."""


class InvalidAesKey(ValueError):
    """The EncodingAESKey must be 43 characters of base64 that decode to 32 bytes."""

    def __init__(self) -> None:
        super().__init__((self.__doc__ or "").strip())
