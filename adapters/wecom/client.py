"""The WeCom server API: one HTTP connection pool and the access tokens of one corp.

Tokens (gettoken, document/path/91039) are cached per app secret until shortly before
``expires_in`` runs out. A refresh is single-flight: concurrent calls wait for the one request
in progress instead of each asking (a burst of gettoken calls is throttled with 45033). WeCom
may invalidate a token early, so a call refused with 40001 / 40014 / 42001 fetches a new token
and is replayed once.

Secrets and tokens travel in query strings, so they are kept out of reprs, error texts and the
``httpx`` request log (see ``RedactQuery``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import SecretStr

from adapters.http import unavailable
from adapters.wecom.errors import TOKEN_ERRCODES, error_for
from smr.channels import PermanentSendError, RetriableSendError

log = logging.getLogger(__name__)

#: Refresh this long before WeCom says the token expires (never less than half its lifetime).
REFRESH_MARGIN_SECONDS = 300.0
MAX_CONCURRENT_CALLS = 20
_SECRET_QUERY = re.compile(r"(access_token|corpsecret)=[^&\s\"']*")
#: Multipart parts: field → (filename, content, content type).
Files = Mapping[str, tuple[str, bytes, str]]


class RedactQuery(logging.Filter):
    """Blanks ``access_token=`` and ``corpsecret=`` in log records (httpx logs each URL)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if _SECRET_QUERY.search(text):
            record.msg, record.args = _SECRET_QUERY.sub(r"\1=***", text), ()
        return True


logging.getLogger("httpx").addFilter(RedactQuery())


@dataclass
class _Token:
    value: str = field(repr=False)
    refresh_at: float


class WeComClient:
    """Calls WeCom APIs for one corp. ``call`` raises the SendError its answer comes to."""

    def __init__(
        self,
        *,
        corp_id: str,
        base_url: str,
        timeout: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.corp_id = corp_id
        self.base_url = base_url
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout)
        self._monotonic = monotonic
        self._tokens: dict[str, _Token] = {}
        self._refreshing: dict[str, asyncio.Lock] = {}
        self._calls = asyncio.Semaphore(MAX_CONCURRENT_CALLS)

    def __repr__(self) -> str:
        return f"WeComClient(corp_id={self.corp_id!r}, base_url={self.base_url!r})"

    async def call(
        self,
        api: str,
        secret: SecretStr,
        body: Mapping[str, Any] | None,
        *,
        query: Mapping[str, str] | None = None,
        files: Files | None = None,
    ) -> dict[str, Any]:
        """POST ``/cgi-bin/<api>`` with ``body`` (GET with ``query`` when there is no body; a
        multipart POST with ``files``, as media uploads take them); the answer when its errcode
        is 0.

        Raises RetriableSendError (timeouts, HTTP 429/5xx, throttling), SkippedSend (a closed
        skip reason, see ``errors``) or PermanentSendError (any other refusal).
        """
        token = await self.token(secret)
        answer = await self._api(api, token, body, query, secret, files)
        if answer.get("errcode") in TOKEN_ERRCODES:
            self._forget(secret, token)
            token = await self.token(secret)
            answer = await self._api(api, token, body, query, secret, files)
        errcode = answer.get("errcode", 0)
        if errcode != 0:
            raise error_for(api, int(errcode), str(answer.get("errmsg", "")))
        return answer

    async def token(self, secret: SecretStr) -> str:
        """The cached access token of ``secret``'s app, fetched once for all waiting callers."""
        key = _key(secret)
        cached = self._tokens.get(key)
        if cached is not None and self._monotonic() < cached.refresh_at:
            return cached.value
        async with self._refreshing.setdefault(key, asyncio.Lock()):
            cached = self._tokens.get(key)
            if cached is None or self._monotonic() >= cached.refresh_at:
                cached = await self._fetch_token(secret)
                self._tokens[key] = cached
            return cached.value

    def _forget(self, secret: SecretStr, stale: str) -> None:
        """Drop a refused token, unless a concurrent caller already replaced it."""
        key = _key(secret)
        cached = self._tokens.get(key)
        if cached is not None and cached.value == stale:
            del self._tokens[key]

    async def _fetch_token(self, secret: SecretStr) -> _Token:
        params = {"corpid": self.corp_id, "corpsecret": secret.get_secret_value()}
        answer = await self._send("gettoken", "GET", params, None, secret)
        errcode = answer.get("errcode", 0)
        if errcode != 0:
            # A token error here means the secret itself is wrong: no refresh can help.
            raise error_for("gettoken", int(errcode), str(answer.get("errmsg", "")))
        value = answer.get("access_token")
        if not isinstance(value, str) or not value:
            raise PermanentSendError("gettoken: the answer has no access_token")
        lifetime = float(answer.get("expires_in") or 7200)
        fresh_for = max(lifetime - REFRESH_MARGIN_SECONDS, lifetime / 2)
        log.info("wecom: new access token for corp %s, fresh for %.0fs", self.corp_id, fresh_for)
        return _Token(value, self._monotonic() + fresh_for)

    async def _api(
        self,
        api: str,
        token: str,
        body: Mapping[str, Any] | None,
        query: Mapping[str, str] | None,
        secret: SecretStr,
        files: Files | None = None,
    ) -> dict[str, Any]:
        params = {**(query or {}), "access_token": token}
        method = "GET" if body is None and files is None else "POST"
        return await self._send(api, method, params, body, secret, token, files)

    async def _send(
        self,
        api: str,
        method: str,
        params: dict[str, str],
        body: Mapping[str, Any] | None,
        secret: SecretStr,
        token: str | None = None,
        files: Files | None = None,
    ) -> dict[str, Any]:
        hidden = [secret.get_secret_value(), token or ""]
        try:
            async with self._calls:
                response = await self._http.request(
                    method, f"/cgi-bin/{api}", params=params, json=body, files=files
                )
        except httpx.TimeoutException:
            raise RetriableSendError(f"{api}: timed out") from None
        except httpx.TransportError as exc:
            raise RetriableSendError(f"{api}: {_scrub(repr(exc), hidden)}") from None
        return _answer(api, response)

    async def aclose(self) -> None:
        await self._http.aclose()


def _answer(api: str, response: httpx.Response) -> dict[str, Any]:
    if failure := unavailable(api, response):
        raise failure
    status = response.status_code
    if status != 200:
        raise PermanentSendError(f"{api}: HTTP {status}")
    try:
        answer = response.json()
    except ValueError:
        raise RetriableSendError(f"{api}: HTTP 200 with a body that is not JSON") from None
    if not isinstance(answer, dict):
        raise RetriableSendError(f"{api}: HTTP 200 with a body that is not a JSON object")
    return answer


def _key(secret: SecretStr) -> str:
    """The cache key of an app: a digest, so the secret itself is never a dict key."""
    return hashlib.sha256(secret.get_secret_value().encode()).hexdigest()[:16]


def _scrub(text: str, hidden: list[str]) -> str:
    for value in hidden:
        if value:
            text = text.replace(value, "***")
    return _SECRET_QUERY.sub(r"\1=***", text)
