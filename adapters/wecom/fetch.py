"""Fetching a media URL to upload it: https only (redirects too), a bounded size and time.

A URL that answers 4xx, is not https or is larger than WeCom takes is a PermanentSendError;
a timeout, a connection failure, 429 or 5xx a RetriableSendError (the CDN may recover).
The query string stays out of error texts: it may carry a signature.
"""

from __future__ import annotations

import httpx

from adapters.http import unavailable
from smr.channels import PermanentSendError, RetriableSendError

MAX_REDIRECTS = 3
_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"


def new_http(timeout: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=timeout, follow_redirects=True, max_redirects=MAX_REDIRECTS)


async def fetch(http: httpx.AsyncClient, url: str, *, max_bytes: int) -> bytes:
    """The body at ``url``, refused past ``max_bytes``."""
    label = f"media URL {url.split('?')[0][:200]}"
    if not url.startswith("https://"):
        raise PermanentSendError(f"{label}: only https URLs are fetched")
    try:
        async with http.stream("GET", url) as response:
            _check(label, response, max_bytes)
            return await _body(label, response, max_bytes)
    except httpx.TimeoutException:
        raise RetriableSendError(f"{label}: timed out") from None
    except httpx.TooManyRedirects:
        raise PermanentSendError(f"{label}: more than {MAX_REDIRECTS} redirects") from None
    except httpx.InvalidURL:
        raise PermanentSendError(f"{label}: not a valid URL") from None
    except httpx.TransportError as exc:
        raise RetriableSendError(f"{label}: {type(exc).__name__}") from None


def _check(label: str, response: httpx.Response, max_bytes: int) -> None:
    if failure := unavailable(label, response):
        raise failure
    if response.status_code != 200:
        raise PermanentSendError(f"{label}: HTTP {response.status_code}")
    if response.url.scheme != "https":
        raise PermanentSendError(f"{label}: redirected to a URL that is not https")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise PermanentSendError(f"{label}: {int(declared):,} bytes; at most {max_bytes:,}")


async def _body(label: str, response: httpx.Response, max_bytes: int) -> bytes:
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise PermanentSendError(f"{label}: larger than {max_bytes:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def sniff(data: bytes) -> str | None:
    """The format of a file by its first bytes: png, jpeg, mp4 (an ISO media file), or None."""
    if data.startswith(_PNG):
        return "png"
    if data.startswith(_JPEG):
        return "jpeg"
    if data[4:8] == b"ftyp":
        return "mp4"
    return None
