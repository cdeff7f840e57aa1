"""Contacts and the identities that resolve to them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Table, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from smr.models import Contact, ContactIdentity, table_of
from smr.repositories._sql import insert_ignoring_conflicts, one_of, update_many

Identity = tuple[str, str]

_UPDATABLE = (
    "name",
    "tags",
    "attributes",
    "opted_out",
    "orders",
    "total_spent",
    "first_order_at",
    "last_order_at",
    "updated_at",
)


async def owners_of(session: AsyncSession, identities: Iterable[Identity]) -> dict[Identity, str]:
    """(kind, value) → contact id, for the identities that are known."""
    pairs = list(set(identities))
    if not pairs:
        return {}
    # Both primary-key columns as arrays: an index lookup even in a generic plan; the exact
    # pairs are picked here (kinds are few).
    kinds = list({kind for kind, _ in pairs})
    values = list({value for _, value in pairs})
    stmt = select(ContactIdentity.kind, ContactIdentity.value, ContactIdentity.contact_id).where(
        one_of(session, ContactIdentity.kind, kinds), one_of(session, ContactIdentity.value, values)
    )
    wanted = set(pairs)
    rows = await session.execute(stmt)
    return {(kind, value): cid for kind, value, cid in rows if (kind, value) in wanted}


async def load(session: AsyncSession, ids: Iterable[str]) -> list[tuple[Contact, dict[str, str]]]:
    """Contacts to be changed, with their identities, in one query: locked (PostgreSQL) in id
    order, so concurrent writers neither lose each other's updates nor deadlock."""
    wanted = list(set(ids))
    if not wanted:
        return []
    stmt = (
        select(Contact, ContactIdentity.kind, ContactIdentity.value)
        .outerjoin(ContactIdentity, ContactIdentity.contact_id == Contact.id)
        .where(one_of(session, Contact.id, wanted))
        .order_by(Contact.id)
        .with_for_update(of=Contact)
    )
    found: dict[str, tuple[Contact, dict[str, str]]] = {}
    for contact, kind, value in await session.execute(stmt):
        _, identities = found.setdefault(contact.id, (contact, {}))
        if kind is not None:
            identities[kind] = value
    return list(found.values())


async def identities_of(session: AsyncSession, ids: Iterable[str]) -> dict[str, dict[str, str]]:
    """contact id → {kind: value}."""
    wanted = list(set(ids))
    found: dict[str, dict[str, str]] = {cid: {} for cid in wanted}
    if not wanted:
        return found
    stmt = select(ContactIdentity).where(one_of(session, ContactIdentity.contact_id, wanted))
    for row in await session.scalars(stmt):
        found[row.contact_id][row.kind] = row.value
    return found


async def insert_contacts(session: AsyncSession, rows: list[dict[str, Any]]) -> set[str]:
    """Insert contacts; returns the ids inserted (an id a concurrent request created is not)."""
    ordered = sorted(rows, key=lambda r: r["id"])
    return {cid for (cid,) in await _insert_new(session, table_of(Contact), ordered)}


async def attach_identities(session: AsyncSession, rows: list[dict[str, str]]) -> set[Identity]:
    """Attach identities in key order (so concurrent writers cannot deadlock); returns those
    attached. One a concurrent transaction attached first is not: PostgreSQL waits for that
    transaction, then skips the row."""
    ordered = sorted(rows, key=lambda r: (r["kind"], r["value"]))
    return {(k, v) for k, v in await _insert_new(session, table_of(ContactIdentity), ordered)}


async def _insert_new(
    session: AsyncSession, table: Table, rows: list[dict[str, Any]]
) -> list[tuple[Any, ...]]:
    if not rows:
        return []
    primary = list(table.primary_key.columns)
    stmt = insert_ignoring_conflicts(session, table).returning(*primary)
    return [tuple(row) for row in (await session.execute(stmt, rows)).all()]


async def delete_contacts(session: AsyncSession, ids: Iterable[str]) -> None:
    wanted = list(ids)
    if wanted:
        await session.execute(delete(Contact).where(one_of(session, Contact.id, wanted)))


async def update_contacts(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Write back the mutable columns of each row (keyed by ``id``), in id order."""
    ordered = sorted(rows, key=lambda r: r["id"])
    await update_many(session, table_of(Contact), ordered, columns=_UPDATABLE)


async def get(session: AsyncSession, contact_id: str) -> Contact | None:
    return await session.get(Contact, contact_id)


async def opt_outs(session: AsyncSession, ids: Iterable[str]) -> dict[str, list[str]]:
    """contact id → the channels it opted out of ("*": all marketing)."""
    wanted = list(set(ids))
    if not wanted:
        return {}
    stmt = select(Contact.id, Contact.opted_out).where(one_of(session, Contact.id, wanted))
    return {cid: list(channels) for cid, channels in await session.execute(stmt)}
