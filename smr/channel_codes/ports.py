"""What the channel code keeper needs from WeCom, as a Protocol (adapters implement it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from smr.channel_codes.schema import ChannelCodeSpec, CodeKind


@dataclass(frozen=True)
class MadeCode:
    """A code WeCom made: its config_id and, when the answer carries it, the QR picture URL."""

    config_id: str
    qr_code: str | None


class ContactWays(Protocol):
    """WeCom's 「联系我」 (person codes) and 「加入群聊」 (group codes) configurations.

    Every method raises ``smr.channels.SendError`` (retriable or permanent) when WeCom refuses
    or cannot be reached; nothing else.
    """

    async def create(self, spec: ChannelCodeSpec) -> MadeCode: ...

    async def qr_code(self, kind: CodeKind, config_id: str) -> str: ...

    async def update(self, spec: ChannelCodeSpec, config_id: str) -> None: ...

    async def delete(self, kind: CodeKind, config_id: str) -> None: ...

    async def aclose(self) -> None: ...
