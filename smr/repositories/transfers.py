"""Customer transfers (客户继承): the contact's owner staff once WeCom has moved it, and the
awaiting transfer deliveries a transfer_fail callback ends."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from smr.models import Contact, ContactIdentity, Delivery, table_of
from smr.repositories import Record
from smr.statuses import DeliveryStatus

#: The contact attribute that names its owner staff (see ``smr.services.addressing``).
OWNER_ATTRIBUTE = "wecom_owner"


async def set_owner(session: AsyncSession, *, contact_id: str, owner: str, now: datetime) -> bool:
    """Make ``owner`` the contact's owner staff (its ``wecom_owner`` attribute), holding the
    row meanwhile; False when the contact is gone."""
    contact = await session.get(Contact, contact_id, with_for_update=True)
    if contact is None:
        return False
    if contact.attributes.get(OWNER_ATTRIBUTE) != owner:
        contact.attributes = {**contact.attributes, OWNER_ATTRIBUTE: owner}
        contact.updated_at = now
        await session.flush()
    return True


async def awaiting_of(
    session: AsyncSession, *, wecom_userid: str, channel: str, limit: int = 100
) -> list[Record]:
    """The awaiting deliveries on ``channel`` of the contact with this WeCom external userid."""
    deliveries, identities = table_of(Delivery), table_of(ContactIdentity)
    stmt = (
        select(deliveries)
        .join(identities, identities.c.contact_id == deliveries.c.contact_id)
        .where(
            identities.c.kind == "wecom_userid",
            identities.c.value == wecom_userid,
            deliveries.c.channel == channel,
            deliveries.c.status == DeliveryStatus.AWAITING,
        )
        .order_by(deliveries.c.id)
        .limit(limit)
    )
    return [Record(**row) for row in (await session.execute(stmt)).mappings()]
