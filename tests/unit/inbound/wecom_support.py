"""The official 加解密方案说明 example and helpers to build signed WeCom callbacks."""

from __future__ import annotations

from pathlib import Path

from smr.inbound.wecom import WXBizMsgCrypt

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "wecom"

TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CORP_ID = "wx5823bf96d3bd56c7"

# URL verification (GET), with echostr already URL-decoded.
GET_SIGNATURE = "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
GET_TIMESTAMP = "1409659589"
GET_NONCE = "263014780"
ECHOSTR = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
ECHO_PLAIN = "1616140317555161061"
ECHO_PREFIX = b"c41b64491c2468d0"

# An encrypted text message (POST).
POST_SIGNATURE = "477715d11cdb4164915debcba66cb864d751f3e6"
POST_TIMESTAMP = "1409659813"
POST_NONCE = "1372623149"
POST_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3Qczcd"
    "CUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4"
    "Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r"
    "+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4"
    "XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIG"
    "HBZZIs2pDBS8R07+qN+E7Q=="
)
POST_PREFIX = b"0960688932c47ef1"
POST_PLAIN = (FIXTURES / "text_message.xml").read_text(encoding="utf-8")


def envelope(encrypted: str, *, to: str = CORP_ID) -> bytes:
    """The body WeCom POSTs around a ciphertext."""
    return (
        f"<xml><ToUserName><![CDATA[{to}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]>"
        "</Encrypt><AgentID><![CDATA[218]]></AgentID></xml>"
    ).encode()


POST_BODY = envelope(POST_ENCRYPT)


def official(receive_id: str = CORP_ID, *, token: str = TOKEN) -> WXBizMsgCrypt:
    return WXBizMsgCrypt(token=token, encoding_aes_key=AES_KEY, receive_id=receive_id)


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def signed_post(
    crypt: WXBizMsgCrypt, inner: str, *, timestamp: str = "1700000000", nonce: str = "424242"
) -> tuple[dict[str, str], bytes]:
    """Query parameters and body of a callback carrying ``inner``, as WeCom would send it."""
    encrypted = crypt.encrypt(inner)
    signature = crypt.signature(timestamp=timestamp, nonce=nonce, encrypted=encrypted)
    params = {"msg_signature": signature, "timestamp": timestamp, "nonce": nonce}
    return params, envelope(encrypted)
