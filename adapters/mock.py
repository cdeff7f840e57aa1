"""The mock channel: records what it "sent" in the ``mock_outbox`` table.

It dedupes by delivery id (a resend after a crash is a no-op), so it is idempotent. Latency and
failures can be injected to rehearse slow or flaky vendors.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import ClassVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smr.channels import (
    Capabilities,
    OutboundMessage,
    RetriableSendError,
    SendError,
    SendResult,
    send_alone,
)
from smr.config import MockSettings
from smr.db import unit_of_work
from smr.repositories import outbox


class MockAdapter:
    name: ClassVar[str] = "mock"
    capabilities: ClassVar[Capabilities] = Capabilities(idempotent=True)

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
        return await send_alone(self, message)

    async def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult | SendError]:
        """One "vendor call" (one latency, one transaction) for many messages."""
        if self.config.latency_ms:
            await asyncio.sleep(self.config.latency_ms / 1000)
        failing = {m.delivery_id for m in messages if self._fails()}
        now = self._clock()
        async with unit_of_work(self._sessions) as session:
            fresh = await outbox.record(
                session, [self._row(m, now) for m in messages if m.delivery_id not in failing]
            )
        return [self._result(m.delivery_id, failing, fresh) for m in messages]

    def _fails(self) -> bool:
        return bool(self.config.fail_rate) and self._rng.random() < self.config.fail_rate

    @staticmethod
    def _result(delivery_id: str, failing: set[str], fresh: set[str]) -> SendResult | SendError:
        if delivery_id in failing:
            return RetriableSendError("mock: injected failure")
        response = "recorded" if delivery_id in fresh else "already recorded (resend deduplicated)"
        return SendResult(vendor_message_id=f"mock-{delivery_id}", response=response)

    @staticmethod
    def _row(message: OutboundMessage, now: datetime) -> dict[str, object]:
        return {
            "delivery_id": message.delivery_id,
            "channel": message.channel,
            "contact_id": message.contact_id,
            "recipient": dict(message.recipient),
            "text": message.text,
            "params": dict(message.params),
            "sent_at": now,
        }

    async def aclose(self) -> None:
        return None
