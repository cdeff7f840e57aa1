"""Customer groups (客户群): what a WeCom callback changes, tags, and how groups look to
templates and the API.

Rules:

- ``create`` and ``update`` with ``change_name`` / ``change_notice`` / ``change_owner`` need the
  group fetched (groupchat/get): the callback names the change, not the new value.
- ``dismiss`` marks the group dismissed at once; no fetch.
- ``add_member`` / ``del_member`` are applied at once, without a fetch, when the callback's
  LastMemVer is the member_version we store and it lists the members (MemChangeList); the
  group then stores CurMemVer. Otherwise (an unknown group, versions apart, no list) the group
  is fetched again.
- A member WeCom lists by external userid is a customer (``type`` 2 in groupchat/get); a
  member a callback adds is taken for a customer when its id has the external userid form
  (``wm…`` of a WeChat user, ``wo…`` of another corp's WeCom user) or is a contact's
  ``wecom_userid``, else for staff; the next fetch sets the type WeCom gives.
- Customers are linked to the contact whose ``wecom_userid`` they are, once it exists.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from smr.errors import NotFound
from smr.models import GroupMemberType, GroupOwnerStatus
from smr.repositories import contacts as contacts_repo
from smr.repositories import group_reads as reads
from smr.repositories import groups as repo
from smr.repositories.group_reads import StoredGroup, StoredMember
from smr.repositories.groups import FetchedGroup, FetchedMember

ChangeType = Literal["create", "update", "dismiss"]
#: The prefixes of WeCom's external user ids: a WeChat user, another corp's WeCom user.
EXTERNAL_PREFIXES = ("wm", "wo")
_REFETCHED = frozenset({"change_name", "change_notice", "change_owner"})


@dataclass(frozen=True, slots=True)
class ListedGroup:
    """One entry of groupchat/list. The documented answer has no member_version; when one
    comes, a full sync skips groupchat/get for a group whose stored version it equals."""

    chat_id: str
    owner_status: GroupOwnerStatus
    member_version: str | None = None


class GroupSource(Protocol):
    """WeCom's customer groups (``adapters.wecom.groups``). Both raise ``SendError``."""

    def pages(self) -> AsyncIterator[list[ListedGroup]]:
        """Every group, page by page (groupchat/list)."""
        ...

    async def fetch(self, chat_id: str) -> FetchedGroup:
        """One group with its members (groupchat/get)."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class GroupChange:
    """What a change_external_chat callback says of a group."""

    chat_id: str
    change: ChangeType
    at: datetime
    detail: str | None = None
    members: tuple[str, ...] = ()
    last_version: str | None = None
    version: str | None = None
    join_scene: int | None = None


async def save(session: AsyncSession, group: FetchedGroup, *, now: datetime) -> None:
    """Store a fetched group whole, its customers linked to their contacts."""
    await repo.save_fetched(session, [group], owner_status=None, now=now)
    await repo.link_contacts(session, [group.chat_id])


async def apply(session: AsyncSession, change: GroupChange, *, now: datetime) -> bool:
    """Apply what can be applied of ``change`` without WeCom; True when the group must be
    fetched again (see the module's rules)."""
    if change.change == "dismiss":
        await repo.dismiss(session, change.chat_id, now=now)
        return False
    if change.change == "create" or change.detail in _REFETCHED:
        return True
    if change.detail not in ("add_member", "del_member"):
        return False  # an update SMR does not follow
    return not await _apply_members(session, change, now=now)


async def _apply_members(session: AsyncSession, change: GroupChange, *, now: datetime) -> bool:
    if not (change.members and change.last_version and change.version):
        return False
    joining = change.detail == "add_member"
    joined = await _joined(session, change) if joining else []
    applied = await repo.apply_member_change(
        session,
        change.chat_id,
        last_version=change.last_version,
        version=change.version,
        joined=joined,
        left=() if joining else change.members,
        now=now,
    )
    if applied and joining:
        await repo.link_contacts(session, [change.chat_id])
    # WeCom's retry of a callback already applied finds the group at its CurMemVer.
    return applied or await reads.member_version(session, change.chat_id) == change.version


async def _joined(session: AsyncSession, change: GroupChange) -> list[FetchedMember]:
    known = await contacts_repo.owners_of(session, [("wecom_userid", m) for m in change.members])
    customers = {value for _, value in known}
    return [
        FetchedMember(
            userid=userid,
            type=GroupMemberType.CUSTOMER
            if userid in customers or userid.startswith(EXTERNAL_PREFIXES)
            else GroupMemberType.STAFF,
            join_time=change.at,
            join_scene=change.join_scene,
        )
        for userid in change.members
    ]


async def snapshot(session: AsyncSession, chat_id: str) -> dict[str, Any] | None:
    """The group as a group event carries it (``event.group``), or None when not stored."""
    group = await reads.get(session, chat_id)
    return None if group is None else snapshot_of(group)


def snapshot_of(group: StoredGroup) -> dict[str, Any]:
    return {
        "id": group.chat_id,
        "chat_id": group.chat_id,
        "name": group.name,
        "owner": group.owner,
        "notice": group.notice,
        "status": group.status.value,
        "tags": list(group.tags),
        "member_count": group.member_count,
    }


async def stored(session: AsyncSession, chat_id: str) -> StoredGroup:
    """The stored group; NotFound when there is none."""
    group = await reads.get(session, chat_id)
    if group is None:
        raise NotFound(f"No group {chat_id}.")
    return group


async def detail(session: AsyncSession, chat_id: str) -> tuple[StoredGroup, list[StoredMember]]:
    group = await stored(session, chat_id)
    return group, await reads.members_of(session, chat_id)


async def change_tags(
    session: AsyncSession, chat_id: str, *, add: Sequence[str], remove: Sequence[str]
) -> StoredGroup:
    """Add and remove SMR's tags on a group (a tag both added and removed is removed)."""
    await stored(session, chat_id)
    await repo.change_tags(session, chat_id, add=[t for t in add if t not in remove], remove=remove)
    return await stored(session, chat_id)


async def of_contact(session: AsyncSession, identities: Mapping[str, str]) -> list[dict[str, Any]]:
    """The groups a contact (by its identities) is a customer member of, as the API shows them."""
    userid = identities.get("wecom_userid")
    if userid is None:
        return []
    found = await reads.groups_of_customers(session, [userid])
    return [
        {"chat_id": g.chat_id, "name": g.name, "owner": g.owner, "tags": list(g.tags)}
        for g in found.get(userid, ())
    ]
