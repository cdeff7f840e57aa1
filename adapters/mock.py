"""The mock channel: records what it "sent" in the ``mock_outbox`` table.

It dedupes by delivery id (a resend after a crash is a no-op), so it is idempotent. Latency and
failures can be injected to rehearse slow or flaky vendors.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import ClassVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smr.channels import OutboundMessage, RetriableSendError, SendResult
from smr.config import MockSettings
from smr.db import unit_of_work
from smr.repositories import outbox


class MockAdapter:
    name: ClassVar[str] = "mock"
    idempotent: ClassVar[bool] = True

    Config: ClassVar[type[MockSettings]] = MockSettings

    def __init__(
        self,
        config: MockSettings,
        *,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self._sessions = sessions
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - failure injection, not security

    def __repr__(self) -> str:
        return (
            f"MockAdapter(latency_ms={self.config.latency_ms}, fail_rate={self.config.fail_rate})"
        )

    async def send(self, message: OutboundMessage) -> SendResult:
        if self.config.latency_ms:
            await asyncio.sleep(self.config.latency_ms / 1000)
        if self.config.fail_rate and self._rng.random() < self.config.fail_rate:
            raise RetriableSendError("mock: injected failure", retry_after=None)
        async with unit_of_work(self._sessions) as session:
            fresh = await outbox.record(session, row=self._row(message))
        return SendResult(
            vendor_message_id=f"mock-{message.delivery_id}",
            response="recorded" if fresh else "already recorded (resend deduplicated)",
        )

    def _row(self, message: OutboundMessage) -> dict[str, object]:
        return {
            "delivery_id": message.delivery_id,
            "channel": message.channel,
            "contact_id": message.contact_id,
            "recipient": dict(message.recipient),
            "text": message.text,
            "params": dict(message.params),
            "sent_at": self._clock(),
        }

    async def aclose(self) -> None:
        return None
