"""The contact rows customer groups and the corp run as (``smr.subjects``), and the pages of
groups a schedule playbook's ``groups`` target reaches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, exists, not_, select
from sqlalchemy.ext.asyncio import AsyncSession

from smr.channels import Address
from smr.models import Contact, ContactIdentity, Group, GroupStatus, GroupTag, table_of
from smr.repositories._bulk import insert_new, update_many
from smr.repositories._sql import one_of
from smr.subjects import CORP_ID, GROUP_PREFIX, ContactKind, group_contact_id

_CONTACTS = table_of(Contact)
_IDENTITIES = table_of(ContactIdentity)
_REFRESHED = ("name", "tags", "attributes", "updated_at")


@dataclass(frozen=True)
class GroupFilter:
    """Which active groups: owned by any of ``owners``, named with ``name_contains``, carrying
    any of ``tags_any`` and none of ``tags_none`` (each only when given)."""

    owners: Sequence[str] = ()
    name_contains: str | None = None
    tags_any: Sequence[str] = ()
    tags_none: Sequence[str] = ()


@dataclass(frozen=True)
class GroupSubject:
    chat_id: str
    name: str | None
    owner: str | None
    member_count: int
    tags: tuple[str, ...]

    @property
    def contact_id(self) -> str:
        return group_contact_id(self.chat_id)


async def group_page(
    session: AsyncSession, where: GroupFilter, *, after: str | None, limit: int
) -> list[GroupSubject]:
    """Up to ``limit`` active groups the filter takes, after the group contact id ``after``, in
    chat id order (which is their contact ids' order)."""
    stmt = select(Group).where(Group.status == GroupStatus.ACTIVE, *_conditions(where))
    if after is not None:
        stmt = stmt.where(Group.chat_id > after.removeprefix(GROUP_PREFIX))
    groups = list((await session.scalars(stmt.order_by(Group.chat_id).limit(limit))).all())
    tags = await _tags(session, [g.chat_id for g in groups])
    return [
        GroupSubject(g.chat_id, g.name, g.owner, g.member_count, tags.get(g.chat_id, ()))
        for g in groups
    ]


def _conditions(where: GroupFilter) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if where.owners:
        found.append(Group.owner.in_(list(where.owners)))
    if where.name_contains:
        found.append(Group.name.contains(where.name_contains, autoescape=True))
    if where.tags_any:
        found.append(_tagged(where.tags_any))
    if where.tags_none:
        found.append(not_(_tagged(where.tags_none)))
    return found


def _tagged(tags: Sequence[str]) -> ColumnElement[bool]:
    return exists(select(1).where(GroupTag.chat_id == Group.chat_id, GroupTag.tag.in_(list(tags))))


async def _tags(session: AsyncSession, chat_ids: list[str]) -> dict[str, tuple[str, ...]]:
    if not chat_ids:
        return {}
    stmt = (
        select(GroupTag.chat_id, GroupTag.tag)
        .where(one_of(session, GroupTag.chat_id, chat_ids))
        .order_by(GroupTag.chat_id, GroupTag.tag)
    )
    found: dict[str, list[str]] = {}
    for chat_id, tag in await session.execute(stmt):
        found.setdefault(chat_id, []).append(tag)
    return {chat_id: tuple(tags) for chat_id, tags in found.items()}


async def ensure_groups(
    session: AsyncSession, groups: Sequence[GroupSubject], *, now: datetime
) -> None:
    """The groups' contact rows, created or brought up to date: name, tags, and the owner as
    ``wecom_owner`` (so posts into the group go out as its owner)."""
    rows = [
        _row(
            g.contact_id,
            ContactKind.GROUP,
            name=g.name,
            tags=list(g.tags),
            attributes={"wecom_owner": g.owner, "member_count": g.member_count},
            now=now,
        )
        for g in groups
    ]
    await _ensure(session, rows, now=now)
    identities = [
        {"kind": Address.CHAT_ID, "value": g.chat_id, "contact_id": g.contact_id} for g in groups
    ]
    await insert_new(session, _IDENTITIES, identities, returning=["kind"])


async def ensure_corp(session: AsyncSession, *, name: str, now: datetime) -> str:
    """The corp's contact row (created once); its id."""
    row = _row(CORP_ID, ContactKind.CORP, name=name, tags=[], attributes={}, now=now)
    await insert_new(session, _CONTACTS, [row], returning=["id"])
    return CORP_ID


async def _ensure(session: AsyncSession, rows: list[dict[str, Any]], *, now: datetime) -> None:
    ordered = sorted(rows, key=lambda r: str(r["id"]))
    await insert_new(session, _CONTACTS, ordered, returning=["id"])
    await update_many(session, _CONTACTS, ordered, columns=_REFRESHED)


def _row(
    contact_id: str,
    kind: ContactKind,
    *,
    name: str | None,
    tags: list[str],
    attributes: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    return {
        "id": contact_id,
        "kind": kind,
        "name": name,
        "tags": tags,
        "attributes": {k: v for k, v in attributes.items() if v is not None},
        "opted_out": [],
        "orders": 0,
        "total_spent": Decimal(0),
        "first_order_at": None,
        "last_order_at": None,
        "monthly_spend": {},
        "created_at": now,
        "updated_at": now,
    }
