"""Where a delivery goes: the contact's identities, plus the addresses some channels need that
the run's trigger event and the contact's attributes carry.

- ``phone``, ``wecom_userid``, ``shop_customer_id``: the contact's identities;
- ``owner_staff``: the attribute ``wecom_owner``, else the trigger's ``staff`` (wecom,
  wecom_group, staff);
- ``welcome_code``, and ``welcome_code_at`` (the trigger's occurred_at): from contact.added
  (wecom_welcome);
- ``open_kfid``: from a chat.message that came through 微信客服 (wecom_kf);
- ``chat_id``: from group.joined / group.left (wecom_group).

A key is present only when its source is; channels that need a missing one skip with
``missing_identity``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from smr.repositories import Record
from smr.repositories import addressing as addressing_repo
from smr.repositories import contacts as contacts_repo
from smr.repositories.addressing import RunContext

OWNER_ATTRIBUTE = "wecom_owner"
TRIGGER_KEYS = ("welcome_code", "open_kfid", "chat_id")


async def recipients(
    session: AsyncSession, rows: Sequence[Record], *, addressed: Collection[str] | None = None
) -> dict[str, dict[str, str]]:
    """Delivery id → where it goes, for these delivery rows (two queries). Only deliveries on
    ``addressed`` channels (default: all) read their run's trigger and contact attributes."""
    identities = await contacts_repo.identities_of(session, [r.contact_id for r in rows])
    runs = [r.run_id for r in rows if addressed is None or r.channel in addressed]
    contexts = await addressing_repo.run_contexts(session, runs)
    return {r.id: recipient(identities.get(r.contact_id, {}), contexts.get(r.run_id)) for r in rows}


def recipient(identities: Mapping[str, str], context: RunContext | None) -> dict[str, str]:
    found = dict(identities)
    if context is None:
        return found
    data = context.trigger_data
    owner = context.attributes.get(OWNER_ATTRIBUTE) or data.get("staff")
    if isinstance(owner, str) and owner:
        found["owner_staff"] = owner
    for key in TRIGGER_KEYS:
        value = data.get(key)
        if isinstance(value, str) and value:
            found[key] = value
    if "welcome_code" in found and context.trigger_at is not None:
        found["welcome_code_at"] = context.trigger_at.isoformat()
    return found
