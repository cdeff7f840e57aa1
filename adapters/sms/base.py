"""What both SMS providers share: the contract, one HTTP connection pool, and the checks made
before any vendor call (a phone to send to, a template to send)."""

from __future__ import annotations

import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx

from smr import phones
from smr.channels import (
    Address,
    Capabilities,
    OutboundMessage,
    PermanentSendError,
    RetriableSendError,
    SendResult,
    SkippedSend,
)
from smr.config import SmsSettings
from smr.statuses import SkipReason

Clock = Callable[[], datetime]
Nonce = Callable[[], str]


def system_clock() -> datetime:
    return datetime.now(UTC)


def random_nonce() -> str:
    return str(uuid.uuid4())


class SmsChannel(ABC):
    """The ``sms`` channel through one provider: a vendor-approved template and its params, to
    the contact's phone.

    Neither vendor dedupes by our id (Aliyun SendSms: "不支持幂等"), so the channel is not
    idempotent: a send whose worker was lost becomes ``uncertain`` rather than going out twice.
    Timeouts, HTTP 429 / 5xx and the retriable codes in ``errors`` raise RetriableSendError,
    other refusals PermanentSendError, a contact without a phone SkippedSend (missing_identity).
    """

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities] = Capabilities(
        needs=frozenset({Address.PHONE}), attachments=frozenset()
    )
    Config: ClassVar[type[SmsSettings]] = SmsSettings
    #: The settings, besides the key pair, that this provider cannot do without.
    required: ClassVar[tuple[str, ...]] = ("sign_name",)
    default_base_url: ClassVar[str]
    default_region: ClassVar[str]

    def __init__(
        self,
        config: SmsSettings,
        *,
        clock: Clock = system_clock,
        nonce: Nonce = random_nonce,
    ) -> None:
        if missing := self.missing(config):
            raise ValueError(f"{self.name}: set {', '.join(missing)}")
        assert config.access_key_id is not None
        assert config.access_key_secret is not None
        self.config = config
        self.base_url = config.base_url or self.default_base_url
        self.region = config.region or self.default_region
        self.sign_name = config.sign_name or ""
        self._key_id = config.access_key_id
        self._secret = config.access_key_secret
        self._clock = clock
        self._nonce = nonce
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=config.timeout_seconds)

    @classmethod
    def missing(cls, config: SmsSettings) -> list[str]:
        """The ``SMR_SMS__…`` settings this provider needs and does not have."""
        names = ("access_key_id", "access_key_secret", *cls.required)
        return [f"SMR_SMS__{n.upper()}" for n in names if not getattr(config, n)]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, region={self.region!r}, "
            f"sign_name={self.sign_name!r})"
        )

    async def send(self, message: OutboundMessage) -> SendResult:
        phone = message.recipient.get("phone")
        if not phone:
            raise SkippedSend(
                SkipReason.MISSING_IDENTITY, response=f"{self.name}: the contact has no phone"
            )
        if not phones.is_phone(phone):
            raise PermanentSendError(f"{self.name}: the contact's phone is not a phone number")
        if not message.template_code:
            raise PermanentSendError(
                f"{self.name}: no template; SMS goes out only through a template the vendor "
                "approved (send: {channel: sms, template: <code>, params: {...}})"
            )
        return await self.send_template(message, phone, message.template_code)

    @abstractmethod
    async def send_template(
        self, message: OutboundMessage, phone: str, template: str
    ) -> SendResult:
        """Send ``template`` with ``message.params`` to ``phone`` (as the contact stores it)."""

    async def post(self, content: bytes, headers: Mapping[str, str]) -> httpx.Response:
        """POST to the vendor; the answer, whatever its status. Raises RetriableSendError when
        there is none: a timeout (even a read timeout, after which the vendor may have sent
        the message: delivery semantics retry them) or a transport error."""
        try:
            return await self._http.post("/", content=content, headers=dict(headers))
        except httpx.TimeoutException:
            raise RetriableSendError(f"{self.name}: timed out") from None
        except httpx.TransportError as exc:
            raise RetriableSendError(f"{self.name}: {type(exc).__name__}: {exc}") from None

    def now(self) -> datetime:
        return self._clock().astimezone(UTC)

    async def aclose(self) -> None:
        await self._http.aclose()


def json_object(response: httpx.Response) -> dict[str, Any] | None:
    """The answer's JSON object, or None when the body is not one."""
    try:
        answer = response.json()
    except (ValueError, UnicodeDecodeError):
        return None
    return answer if isinstance(answer, dict) else None


def compact_json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
