"""Request signatures, as pure functions of their inputs (the caller passes time and nonce).

Aliyun RPC, signature method HMAC-SHA1 version 1.0 (短信服务 "HTTP协议及签名",
help.aliyun.com/document_detail/56189 and /101343)::

    CanonicalizedQueryString = "&".join(percentEncode(k) "=" percentEncode(v)), sorted by k
    StringToSign = METHOD "&" percentEncode("/") "&" percentEncode(CanonicalizedQueryString)
    Signature    = Base64(HMAC-SHA1(AccessKeySecret "&", StringToSign))

percentEncode is RFC 3986: only ``A-Z a-z 0-9 - _ . ~`` stay as they are; a space is ``%20``.

Tencent Cloud TC3-HMAC-SHA256 ("签名方法 v3", tencentcloud.com/document/product/1021/34193)::

    CanonicalRequest = "POST\\n/\\n\\n" CanonicalHeaders "\\n" SignedHeaders "\\n" hex(SHA256(body))
    StringToSign     = "TC3-HMAC-SHA256\\n" timestamp "\\n" date "/" service "/tc3_request\\n"
                       hex(SHA256(CanonicalRequest))
    key              = HMAC(HMAC(HMAC("TC3" SecretKey, date), service), "tc3_request")
    Signature        = hex(HMAC-SHA256(key, StringToSign))

with the date the UTC date of the timestamp, and ``content-type;host`` the signed headers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote

TC3_ALGORITHM = "TC3-HMAC-SHA256"
TC3_SIGNED_HEADERS = "content-type;host"


def percent_encode(value: str) -> str:
    return quote(value, safe="-_.~")


def canonical_query(params: Mapping[str, str]) -> str:
    """The sorted, percent-encoded query (``Signature`` itself is never signed)."""
    pairs = sorted((k, v) for k, v in params.items() if k != "Signature")
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in pairs)


def aliyun_string_to_sign(params: Mapping[str, str], *, method: str = "POST") -> str:
    return f"{method}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"


def aliyun_signature(params: Mapping[str, str], secret: str, *, method: str = "POST") -> str:
    """The ``Signature`` of an Aliyun RPC request with these parameters."""
    string_to_sign = aliyun_string_to_sign(params, method=method)
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def tc3_canonical_request(*, host: str, content_type: str, payload: bytes) -> str:
    headers = f"content-type:{content_type.lower()}\nhost:{host.lower()}\n"
    body_hash = hashlib.sha256(payload).hexdigest()
    return f"POST\n/\n\n{headers}\n{TC3_SIGNED_HEADERS}\n{body_hash}"


def tc3_string_to_sign(canonical_request: str, *, timestamp: int, service: str) -> str:
    scope = f"{tc3_date(timestamp)}/{service}/tc3_request"
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    return f"{TC3_ALGORITHM}\n{timestamp}\n{scope}\n{digest}"


def tc3_signature(secret_key: str, string_to_sign: str, *, timestamp: int, service: str) -> str:
    key = _hmac(f"TC3{secret_key}".encode(), tc3_date(timestamp))
    key = _hmac(_hmac(key, service), "tc3_request")
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def tc3_authorization(
    *,
    secret_id: str,
    secret_key: str,
    service: str,
    host: str,
    content_type: str,
    payload: bytes,
    timestamp: int,
) -> str:
    """The ``Authorization`` header of a TC3-signed POST of ``payload`` to ``host``."""
    request = tc3_canonical_request(host=host, content_type=content_type, payload=payload)
    string_to_sign = tc3_string_to_sign(request, timestamp=timestamp, service=service)
    signature = tc3_signature(secret_key, string_to_sign, timestamp=timestamp, service=service)
    scope = f"{tc3_date(timestamp)}/{service}/tc3_request"
    return (
        f"{TC3_ALGORITHM} Credential={secret_id}/{scope}, "
        f"SignedHeaders={TC3_SIGNED_HEADERS}, Signature={signature}"
    )


def tc3_date(timestamp: int) -> str:
    """The UTC date of the timestamp: at 00:44 in Beijing it is still yesterday."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()
