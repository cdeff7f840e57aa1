"""微信客服 (kf) state: the customer's reply window and the kf/sync_msg cursors.

The window is not stored apart: it follows from rows that exist anyway. The customer's last kf
message is the newest ``chat.message`` event of the contact that carries an ``open_kfid``; the
messages sent in the window are the contact's kf deliveries sent since, plus those being sent
right now by earlier claims.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from smr.models import Delivery, Event, WeComKfCursor, table_of
from smr.repositories._bulk import update_many
from smr.repositories._sql import insert_ignoring_conflicts
from smr.statuses import DeliveryStatus

#: How many of the contact's newest chat messages are searched for the last kf one.
RECENT_MESSAGES = 100


@dataclass(frozen=True)
class KfWindow:
    last_message_at: datetime | None
    open_kfid: str | None
    sent: int


async def window(
    session: AsyncSession,
    *,
    contact_id: str,
    open_kfid: str | None,
    since: datetime,
    channel: str,
    delivery_id: str,
) -> KfWindow:
    """The kf window of a contact as delivery ``delivery_id`` sees it: the customer's last kf
    message since ``since`` (to ``open_kfid``, when given), and how many deliveries of
    ``channel`` were sent since, or are being sent by claims older than this one."""
    stmt = (
        select(Event.occurred_at, Event.data)
        .where(Event.contact_id == contact_id, Event.type == "chat.message")
        .order_by(Event.id.desc())
        .limit(RECENT_MESSAGES)
    )
    last: tuple[datetime, str] | None = None
    for occurred_at, data in await session.execute(stmt):
        kfid = (data or {}).get("open_kfid")
        if occurred_at < since or not isinstance(kfid, str) or open_kfid not in (None, kfid):
            continue
        if last is None or occurred_at > last[0]:
            last = (occurred_at, kfid)
    if last is None:
        return KfWindow(None, open_kfid, 0)
    counted = or_(
        and_(Delivery.status == DeliveryStatus.SENT, Delivery.sent_at >= last[0]),
        and_(Delivery.status == DeliveryStatus.SENDING, Delivery.id < delivery_id),
    )
    count = select(func.count()).where(
        Delivery.contact_id == contact_id, Delivery.channel == channel, counted
    )
    return KfWindow(last[0], last[1], int((await session.scalar(count)) or 0))


async def cursor_of(session: AsyncSession, open_kfid: str) -> str | None:
    return await session.scalar(
        select(WeComKfCursor.cursor).where(WeComKfCursor.open_kfid == open_kfid)
    )


async def save_cursor(session: AsyncSession, open_kfid: str, cursor: str, now: datetime) -> None:
    row: dict[str, Any] = {"open_kfid": open_kfid, "cursor": cursor, "updated_at": now}
    table = table_of(WeComKfCursor)
    await session.execute(insert_ignoring_conflicts(session, table), [row])
    await update_many(session, table, [row], columns=("cursor", "updated_at"))
