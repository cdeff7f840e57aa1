"""A delivery's stored attachments reach the channel as typed content; a row whose attachments
cannot be read fails that delivery alone, never the batch or the worker."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import pytest

from smr import content
from smr.channels import OutboundMessage, PermanentSendError, SendError, SendResult
from smr.content import Image, Link, Media
from smr.repositories import Record
from smr.services.sending import message_of, send_batch, send_one

PICTURE = Image(Media(path="media/poster.png"))
LINK = Link(
    title="看看", url="https://example.com", picture=Media(url="https://cdn.example.com/a.png")
)


def delivery(delivery_id: str, attachments: Any) -> Record:
    return Record(
        id=delivery_id,
        run_id="rn_1",
        channel="wecom",
        category="marketing",
        contact_id="ct_1",
        text="您好",
        template_code=None,
        params={},
        attachments=attachments,
    )


class Recorder:
    """A batch channel that records what it was given (passed as ``Any``: only ``send`` and
    ``send_batch`` matter here, whatever else the adapter protocol declares)."""

    name: ClassVar[str] = "recorder"

    def __init__(self) -> None:
        self.seen: list[OutboundMessage] = []

    async def send(self, message: OutboundMessage) -> SendResult:
        self.seen.append(message)
        return SendResult(response="ok")

    async def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult | SendError]:
        self.seen.extend(messages)
        return [SendResult(response="ok") for _ in messages]

    async def aclose(self) -> None:
        return None


def test_a_message_carries_the_rows_attachments() -> None:
    stored = [content.as_json(PICTURE), content.as_json(LINK)]

    assert message_of(delivery("dl_1", stored), {}).attachments == (PICTURE, LINK)
    assert message_of(delivery("dl_2", []), {}).attachments == ()


@pytest.mark.parametrize(
    "stored",
    [
        {"kind": "image"},
        ["image"],
        [{"kind": "sticker", "media": {"path": "a.png"}}],
        [{"kind": "image", "media": {"path": "a.png", "url": "https://example.com/a.png"}}],
        [{"kind": "link", "url": "https://example.com"}],
    ],
)
def test_unreadable_attachments_are_a_permanent_error(stored: Any) -> None:
    with pytest.raises(PermanentSendError, match="attachments cannot be read"):
        message_of(delivery("dl_1", stored), {})


async def test_send_one_fails_an_unreadable_row_without_calling_the_channel() -> None:
    channel: Any = Recorder()

    outcome = await send_one(channel, delivery("dl_1", ["?"]), {}, limit_seconds=5)

    assert outcome.attempt == "failed"
    assert "attachments cannot be read" in (outcome.response or "")
    assert channel.seen == []


async def test_a_batch_sends_the_readable_rows_and_fails_the_other() -> None:
    channel: Any = Recorder()
    batch: list[tuple[Record, dict[str, str]]] = [
        (delivery("dl_1", [content.as_json(PICTURE)]), {}),
        (delivery("dl_2", [{"kind": "nope"}]), {}),
        (delivery("dl_3", []), {}),
    ]

    outcomes = await send_batch(channel, batch, limit_seconds=5)

    assert [o.attempt for o in outcomes] == ["sent", "failed", "sent"]
    assert [o.delivery.id for o in outcomes] == ["dl_1", "dl_2", "dl_3"]
    assert [(m.delivery_id, m.attachments) for m in channel.seen] == [
        ("dl_1", (PICTURE,)),
        ("dl_3", ()),
    ]
