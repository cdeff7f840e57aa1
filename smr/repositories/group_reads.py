"""Reading customer groups: one group, lists for the API, the groups of customers for
``contact.groups`` (see ``groups`` for the writes)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Select, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

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
from smr.repositories._sql import any_of, dialect_name, one_of

_GROUPS = table_of(Group)
_MEMBERS = table_of(GroupMember)
_TAGS = table_of(GroupTag)


@dataclass(frozen=True, slots=True)
class StoredGroup:
    chat_id: str
    name: str | None
    owner: str | None
    notice: str | None
    status: GroupStatus
    owner_status: GroupOwnerStatus
    member_version: str | None
    member_count: int
    created_at: datetime | None
    synced_at: datetime | None
    updated_at: datetime
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StoredMember:
    userid: str
    type: GroupMemberType
    contact_id: str | None
    name: str | None
    join_time: datetime | None
    join_scene: int | None
    invitor: str | None
    group_nickname: str | None


@dataclass(frozen=True, slots=True)
class MemberOf:
    """A group a customer is in, as ``contact.groups`` shows it."""

    chat_id: str
    name: str | None
    owner: str | None
    tags: tuple[str, ...] = field(default=())


async def get(session: AsyncSession, chat_id: str) -> StoredGroup | None:
    row = await session.get(Group, chat_id, populate_existing=True)
    if row is None:
        return None
    tags = await tags_of(session, [chat_id])
    return _stored(row, tags.get(chat_id, ()))


async def member_version(session: AsyncSession, chat_id: str) -> str | None:
    stmt = select(Group.member_version).where(Group.chat_id == chat_id)
    version: str | None = await session.scalar(stmt)
    return version


async def stored_versions(session: AsyncSession) -> dict[str, str | None]:
    """chat_id → stored member_version, of the active groups."""
    stmt = select(Group.chat_id, Group.member_version).where(Group.status == GroupStatus.ACTIVE)
    return {row.chat_id: row.member_version for row in await session.execute(stmt)}


async def tags_of(session: AsyncSession, chat_ids: Iterable[str]) -> dict[str, tuple[str, ...]]:
    wanted = list(set(chat_ids))
    if not wanted:
        return {}
    stmt = (
        select(GroupTag.chat_id, GroupTag.tag)
        .where(one_of(session, GroupTag.chat_id, wanted))
        .order_by(GroupTag.chat_id, GroupTag.tag)
    )
    found: dict[str, list[str]] = {}
    for chat_id, tag in await session.execute(stmt):
        found.setdefault(chat_id, []).append(tag)
    return {chat_id: tuple(tags) for chat_id, tags in found.items()}


async def list_groups(
    session: AsyncSession,
    *,
    owner: str | None = None,
    name_contains: str | None = None,
    tag: str | None = None,
    status: GroupStatus | None = None,
    before: str | None = None,
    limit: int,
) -> list[StoredGroup]:
    """Groups by chat_id, descending, ``limit + 1`` of them (see ``_sql.page``)."""
    stmt = select(Group).order_by(Group.chat_id.desc()).limit(limit + 1)
    if owner is not None:
        stmt = stmt.where(Group.owner == owner)
    if name_contains:
        stmt = stmt.where(Group.name.contains(name_contains, autoescape=True))
    if tag is not None:
        tagged = select(GroupTag.chat_id).where(GroupTag.tag == tag)
        stmt = stmt.where(Group.chat_id.in_(tagged))
    if status is not None:
        stmt = stmt.where(Group.status == status)
    if before is not None:
        stmt = stmt.where(Group.chat_id < before)
    rows = list((await session.scalars(stmt)).all())
    tags = await tags_of(session, [r.chat_id for r in rows])
    return [_stored(r, tags.get(r.chat_id, ())) for r in rows]


async def members_of(session: AsyncSession, chat_id: str) -> list[StoredMember]:
    """The group's members, staff first; a customer's contact also when found by identity
    (a contact created after the member was stored is not linked yet)."""
    identity = and_(
        ContactIdentity.kind == "wecom_userid", ContactIdentity.value == GroupMember.userid
    )
    by_identity = select(ContactIdentity.contact_id).where(identity).scalar_subquery()
    contact = func.coalesce(GroupMember.contact_id, by_identity).label("linked")
    stmt = (
        select(GroupMember, contact)
        .where(GroupMember.chat_id == chat_id)
        .order_by(GroupMember.type.desc(), GroupMember.join_time, GroupMember.userid)
    )
    return [_member(m, linked) for m, linked in await session.execute(stmt)]


async def groups_of_customers(
    session: AsyncSession, userids: Collection[str]
) -> dict[str, list[MemberOf]]:
    """external userid → the active groups it is a customer member of, with their tags; one
    query."""
    if not userids:
        return {}
    result = await session.execute(_groups_of(dialect_name(session)), {"ids": list(userids)})
    tags: dict[tuple[str, str], list[str]] = {}
    groups: dict[str, dict[str, Mapping[str, Any]]] = {}
    for row in result.mappings():  # one row per (customer, group, tag), in that order
        groups.setdefault(row["userid"], {})[row["chat_id"]] = row
        tagged = tags.setdefault((row["userid"], row["chat_id"]), [])
        if row["tag"] is not None:
            tagged.append(row["tag"])
    return {
        userid: sorted(
            (MemberOf(c, r["name"], r["owner"], tuple(tags[userid, c])) for c, r in mine.items()),
            key=_by_name,
        )
        for userid, mine in groups.items()
    }


def _by_name(group: MemberOf) -> tuple[str, str]:
    return (group.name or "", group.chat_id)


@cache
def _groups_of(dialect: str) -> Select[Any]:
    member, group, tag = _MEMBERS.c, _GROUPS.c, _TAGS.c
    return (
        select(member.userid, group.chat_id, group.name, group.owner, tag.tag)
        .join_from(_MEMBERS, _GROUPS, group.chat_id == member.chat_id)
        .outerjoin(_TAGS, tag.chat_id == group.chat_id)
        .where(any_of(dialect, member.userid, "ids"))
        .where(member.type == GroupMemberType.CUSTOMER.value)
        .where(group.status == GroupStatus.ACTIVE.value)
        .order_by(member.userid, group.chat_id, tag.tag)
    )


def _stored(row: Group, tags: tuple[str, ...]) -> StoredGroup:
    return StoredGroup(
        chat_id=row.chat_id,
        name=row.name,
        owner=row.owner,
        notice=row.notice,
        status=GroupStatus(row.status),
        owner_status=GroupOwnerStatus(row.owner_status),
        member_version=row.member_version,
        member_count=row.member_count,
        created_at=row.created_at,
        synced_at=row.synced_at,
        updated_at=row.updated_at,
        tags=tags,
    )


def _member(row: GroupMember, linked: str | None) -> StoredMember:
    return StoredMember(
        userid=row.userid,
        type=GroupMemberType(row.type),
        contact_id=linked,
        name=row.name,
        join_time=row.join_time,
        join_scene=row.join_scene,
        invitor=row.invitor,
        group_nickname=row.group_nickname,
    )
