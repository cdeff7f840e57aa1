"""The contacts a schedule playbook reaches, streamed in id order a page at a time."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, Text, bindparam, column, exists, func, not_, select
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import type_coerce

from smr.models import Contact, SegmentMember
from smr.repositories._sql import dialect_name
from smr.subjects import ContactKind


async def page_ids(
    session: AsyncSession,
    *,
    after: str | None,
    limit: int,
    tags_any: Sequence[str] = (),
    tags_none: Sequence[str] = (),
    segment: str | None = None,
) -> list[str]:
    """Ids of up to ``limit`` customers (contacts of kind person) after ``after`` (in id order)
    that carry at least one of ``tags_any`` (when given) and none of ``tags_none``, in
    ``segment`` (when given)."""
    stmt = (
        select(Contact.id)
        .where(Contact.kind == ContactKind.PERSON)
        .order_by(Contact.id)
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(Contact.id > after)
    if tags_any:
        stmt = stmt.where(_has_any_tag(session, list(tags_any), name="tags_any"))
    if tags_none:
        stmt = stmt.where(not_(_has_any_tag(session, list(tags_none), name="tags_none")))
    if segment is not None:
        member = select(1).where(
            SegmentMember.segment_id == segment, SegmentMember.contact_id == Contact.id
        )
        stmt = stmt.where(exists(member))
    return list((await session.scalars(stmt)).all())


def _has_any_tag(session: AsyncSession, tags: list[str], *, name: str) -> ColumnElement[bool]:
    if dialect_name(session) == "postgresql":
        # jsonb ?| text[]: one index-friendly operator, one statement whatever the tag count.
        wanted = bindparam(name, tags, type_=ARRAY(Text()))
        has_any: ColumnElement[bool] = type_coerce(Contact.tags, JSONB).has_any(wanted)
        return has_any
    each = func.json_each(Contact.tags).table_valued(column("value", Text))
    return exists(select(1).select_from(each).where(each.c.value.in_(tags)))
