"""kf/sync_msg (读取消息): the pull behind a ``kf_msg_or_event`` callback.

The callback only says messages are waiting and hands over a token valid 10 minutes. The pull
continues from the cursor stored for the 客服 account, page by page (``has_more``), and turns
each customer message (``origin`` 3) into a ``chat.message`` event:
``{text, open_kfid, msgid, msgtype, channel: "wecom_kf", chat: "single", speaker: "customer"}``
(the fields archived chats carry too, see ``smr.inbound.archive``) for the contact whose
``wecom_userid`` is the message's external_userid. Those events also open the kf reply window
(see ``smr.repositories.kf``). A page's cursor is stored only after its events are ingested;
their ids (``kf:<msgid>``) make a repeated page harmless.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.wecom.client import WeComClient
from smr.db import unit_of_work
from smr.edge import storable
from smr.repositories import kf as kf_repo
from smr.schemas import EventIn

#: The channel 微信客服 messages come in on, and are answered through.
KF_CHANNEL = "wecom_kf"

PAGE = 1000
CUSTOMER = 3  # origin: 3 the customer, 4 system events, 5 a 接待人员
Ingest = Callable[[list[EventIn]], Awaitable[None]]


async def pull(
    client: WeComClient,
    secret: SecretStr,
    *,
    token: str,
    open_kfid: str,
    sessions: async_sessionmaker[AsyncSession],
    clock: Callable[[], datetime],
    ingest: Ingest,
) -> int:
    """Pull what waits for ``open_kfid``; ingest it page by page. Returns the events made.

    Raises SendError when WeCom refuses (the cursor stays where the last good page left it).
    """
    async with unit_of_work(sessions) as session:
        cursor = await kf_repo.cursor_of(session, open_kfid) or ""
    made = 0
    while True:
        body = {"cursor": cursor, "token": token, "limit": PAGE, "open_kfid": open_kfid}
        answer = await client.call("kf/sync_msg", secret, body)
        events = [e for m in answer.get("msg_list") or [] if (e := event_of(m)) is not None]
        if events:
            await ingest(events)
            made += len(events)
        cursor = str(answer.get("next_cursor") or cursor)
        if cursor:
            async with unit_of_work(sessions) as session:
                await kf_repo.save_cursor(session, open_kfid, cursor, clock())
        if answer.get("has_more") != 1:
            return made


def event_of(message: dict[str, Any]) -> EventIn | None:
    """A customer's message as a chat.message event; None for anything else. Text a database
    cannot hold (a NUL) is replaced, not refused: the customer did write the message."""
    if message.get("origin") != CUSTOMER:
        return None
    message = storable(message)
    msgtype = str(message.get("msgtype") or "")
    text = (message.get("text") or {}).get("content", "") if msgtype == "text" else ""
    try:
        return EventIn.model_validate(
            {
                "id": f"kf:{message['msgid']}",
                "type": "chat.message",
                "occurred_at": datetime.fromtimestamp(int(message["send_time"]), UTC),
                "contact": {"wecom_userid": message["external_userid"]},
                "data": {
                    "text": text,
                    "msgtype": msgtype,
                    "open_kfid": message["open_kfid"],
                    "msgid": message["msgid"],
                    "channel": KF_CHANNEL,
                    "chat": "single",
                    "speaker": "customer",
                },
            }
        )
    except (KeyError, TypeError, ValueError, ValidationError):
        return None  # a message WeCom sent without the fields SMR needs: nothing to act on
