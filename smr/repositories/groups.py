"""Customer groups (客户群), their current members and SMR's tags on them: the writes (the
reads are in ``group_reads``).

Writes take what WeCom says of a group (``FetchedGroup``); reads give typed rows. A group's
members are replaced whole by a fetch, or changed member by member when a callback can be
applied without one (``apply_member_change``). Customers link to the contact whose
``wecom_userid`` identity they are (``link_contacts``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import and_, bindparam, delete, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert, Update

from smr.models import (
    ContactIdentity,
    Group,
    GroupMember,
    GroupMemberType,
    GroupOwnerStatus,
    GroupStatus,
    GroupTag,
    table_of,
)
from smr.repositories._sql import dialect_name, insert_ignoring_conflicts, one_of

_GROUPS = table_of(Group)
_MEMBERS = table_of(GroupMember)
_TAGS = table_of(GroupTag)
_FETCHED = ("name", "owner", "notice", "member_version", "created_at", "synced_at", "updated_at")


@dataclass(frozen=True, slots=True)
class FetchedMember:
    """One member_list entry of groupchat/get."""

    userid: str
    type: GroupMemberType
    name: str | None = None
    join_time: datetime | None = None
    join_scene: int | None = None
    invitor: str | None = None
    group_nickname: str | None = None


@dataclass(frozen=True, slots=True)
class FetchedGroup:
    """A group as groupchat/get describes it."""

    chat_id: str
    name: str | None
    owner: str | None
    notice: str | None
    created_at: datetime | None
    member_version: str | None
    members: tuple[FetchedMember, ...] = ()


# Writes -------------------------------------------------------------------------------------


async def save_fetched(
    session: AsyncSession,
    groups: Sequence[FetchedGroup],
    *,
    owner_status: Mapping[str, GroupOwnerStatus] | None,
    now: datetime,
) -> None:
    """Insert or update ``groups`` (active again if dismissed) and replace their members, a
    statement per table; ``owner_status`` (chat id → status) when groupchat/list said it."""
    if not groups:
        return
    statuses = owner_status or {}
    values = [
        {
            "chat_id": group.chat_id,
            "name": group.name,
            "owner": group.owner,
            "notice": group.notice,
            "member_version": group.member_version,
            "created_at": group.created_at,
            "synced_at": now,
            "updated_at": now,
            "status": GroupStatus.ACTIVE,
            "owner_status": statuses.get(group.chat_id, GroupOwnerStatus.EMPLOYED),
            "member_count": len(group.members),
        }
        for group in groups
    ]
    changed = [*_FETCHED, "status", "member_count", *(["owner_status"] if statuses else [])]
    await session.execute(_upsert(dialect_name(session), tuple(changed)), values)
    chat_ids = [group.chat_id for group in groups]
    await session.execute(delete(GroupMember).where(GroupMember.chat_id.in_(chat_ids)))
    rows = [{"chat_id": g.chat_id, **_member_row(m)} for g in groups for m in g.members]
    if rows:
        await session.execute(_MEMBERS.insert(), rows)


@cache
def _upsert(dialect: str, changed: tuple[str, ...]) -> Insert:
    module: Any = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(_GROUPS)
    return stmt.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=["chat_id"], set_={name: stmt.excluded[name] for name in changed}
    )


def _member_row(member: FetchedMember) -> dict[str, Any]:
    return {
        "userid": member.userid,
        "type": member.type,
        "contact_id": None,
        "name": member.name,
        "join_time": member.join_time,
        "join_scene": member.join_scene,
        "invitor": member.invitor,
        "group_nickname": member.group_nickname,
    }


async def mark_listed(
    session: AsyncSession, listed: dict[str, GroupOwnerStatus], *, now: datetime
) -> None:
    """Groups groupchat/list reported: their owner status and ``synced_at`` (the sync marks
    the groups it did not list as dismissed by that time, see ``dismiss_unlisted``)."""
    rows = [{"b_chat_id": c, "b_owner_status": s, "b_now": now} for c, s in listed.items()]
    if rows:
        await session.execute(_mark_listed(), rows)


@cache
def _mark_listed() -> Update:
    return (
        update(_GROUPS)
        .where(_GROUPS.c.chat_id == bindparam("b_chat_id"))
        .values(owner_status=bindparam("b_owner_status"), synced_at=bindparam("b_now"))
    )


async def dismiss_unlisted(session: AsyncSession, *, listed_since: datetime, now: datetime) -> int:
    """Mark dismissed the active groups WeCom has not reported since ``listed_since``."""
    stmt = (
        update(Group)
        .where(Group.status == GroupStatus.ACTIVE)
        .where((Group.synced_at < listed_since) | Group.synced_at.is_(None))
        .values(status=GroupStatus.DISMISSED, updated_at=now)
    )
    result: Any = await session.execute(stmt)
    return int(result.rowcount or 0)


async def dismiss(session: AsyncSession, chat_id: str, *, now: datetime) -> bool:
    """Mark one group dismissed; False when it is not stored."""
    stmt = (
        update(Group)
        .where(Group.chat_id == chat_id)
        .values(status=GroupStatus.DISMISSED, updated_at=now)
    )
    result: Any = await session.execute(stmt)
    return bool(result.rowcount)


async def apply_member_change(
    session: AsyncSession,
    chat_id: str,
    *,
    last_version: str,
    version: str,
    joined: Sequence[FetchedMember] = (),
    left: Collection[str] = (),
    now: datetime,
) -> bool:
    """Move the group from member version ``last_version`` to ``version`` with these members
    joined and left; False (nothing written) when its stored version is not ``last_version``.
    """
    moved = (
        update(Group)
        .where(Group.chat_id == chat_id, Group.member_version == last_version)
        .values(member_version=version, updated_at=now)
    )
    result: Any = await session.execute(moved)
    if not result.rowcount:
        return False
    if left:
        gone = one_of(session, GroupMember.userid, list(left))
        await session.execute(delete(GroupMember).where(GroupMember.chat_id == chat_id, gone))
    rows = [{"chat_id": chat_id, **_member_row(m)} for m in joined]
    if rows:
        await session.execute(insert_ignoring_conflicts(session, _MEMBERS), rows)
    count = select(func.count()).where(GroupMember.chat_id == chat_id).scalar_subquery()
    await session.execute(update(Group).where(Group.chat_id == chat_id).values(member_count=count))
    return True


async def link_contacts(session: AsyncSession, chat_ids: Iterable[str] | None = None) -> None:
    """Link each customer member not linked yet to the contact whose ``wecom_userid`` it is
    (of the groups ``chat_ids``, or of all groups)."""
    identity = and_(
        ContactIdentity.kind == "wecom_userid", ContactIdentity.value == GroupMember.userid
    )
    owner = select(ContactIdentity.contact_id).where(identity).scalar_subquery()
    stmt = (
        update(GroupMember)
        .where(GroupMember.contact_id.is_(None), GroupMember.type == GroupMemberType.CUSTOMER)
        .where(exists().where(identity))
        .values(contact_id=owner)
    )
    if chat_ids is not None:
        wanted = list(chat_ids)
        if not wanted:
            return
        stmt = stmt.where(one_of(session, GroupMember.chat_id, wanted))
    await session.execute(stmt)


async def change_tags(
    session: AsyncSession, chat_id: str, *, add: Sequence[str], remove: Collection[str]
) -> None:
    if remove:
        gone = one_of(session, GroupTag.tag, list(remove))
        await session.execute(delete(GroupTag).where(GroupTag.chat_id == chat_id, gone))
    rows = [{"chat_id": chat_id, "tag": tag} for tag in dict.fromkeys(add)]
    if rows:
        await session.execute(insert_ignoring_conflicts(session, _TAGS), rows)
