"""Contacts and the identities that resolve to them."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from smr.models import Contact, ContactIdentity, table_of
from smr.repositories._execute import fetch
from smr.repositories._sql import Write, any_of, dialect_name, insert_new, one_of

Identity = tuple[str, str]
#: A contact's columns, and its identities (kind → value).
LoadedContact = tuple[Mapping[str, Any], dict[str, str]]

_CONTACTS = table_of(Contact)
_IDENTITIES = table_of(ContactIdentity)

_UPDATABLE = (
    "name",
    "tags",
    "attributes",
    "opted_out",
    "orders",
    "total_spent",
    "first_order_at",
    "last_order_at",
    "monthly_spend",
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


async def find(
    session: AsyncSession,
    *,
    ids: Collection[str] = (),
    identities: Collection[Identity] = (),
    lock: bool = True,
) -> list[LoadedContact]:
    """The contacts named by id or owning one of ``identities``, each with all its identities,
    in one query; unless ``lock`` is False (only to read them), locked (PostgreSQL) in id
    order, so concurrent writers neither lose each other's updates nor deadlock.

    A contact owning an identity value under another kind may come too (the lookup takes kinds
    and values as two arrays); callers pick what they asked for.
    """
    if not ids and not identities:
        return []
    stmt = _contacts(
        dialect_name(session), by_ids=bool(ids), by_identities=bool(identities), lock=lock
    )
    params = {
        "ids": list(set(ids)),
        "kinds": list({kind for kind, _ in identities}),
        "values": list({value for _, value in identities}),
    }
    found: dict[str, LoadedContact] = {}
    for row in await fetch(session, stmt, {k: v for k, v in params.items() if v}):
        _, known = found.setdefault(row["id"], (row, {}))
        if row["kind"] is not None:
            known[row["kind"]] = row["value"]
    return list(found.values())


@cache
def _contacts(dialect: str, *, by_ids: bool, by_identities: bool, lock: bool) -> Select[Any]:
    stmt = (
        select(*_CONTACTS.c, _IDENTITIES.c.kind, _IDENTITIES.c.value)
        .outerjoin(_IDENTITIES, _IDENTITIES.c.contact_id == _CONTACTS.c.id)
        .where(_chosen(dialect, by_ids=by_ids, by_identities=by_identities))
        .order_by(_CONTACTS.c.id)
    )
    return stmt.with_for_update(of=_CONTACTS) if lock else stmt


def _chosen(dialect: str, *, by_ids: bool, by_identities: bool) -> ColumnElement[bool]:
    """Contacts whose id is in :ids, or who own an identity of a kind in :kinds with a value
    in :values. Both primary-key columns as arrays: an index lookup even in a generic plan."""
    by_id = any_of(dialect, _CONTACTS.c.id, "ids")
    if not by_identities:
        return by_id
    owners: Any = (
        select(_IDENTITIES.c.contact_id)
        .where(any_of(dialect, _IDENTITIES.c.kind, "kinds"))
        .where(any_of(dialect, _IDENTITIES.c.value, "values"))
        .correlate(None)
    )
    if by_ids:
        # A union rather than an OR, so that each side stays an index lookup.
        owners = union_all(owners, select(_CONTACTS.c.id).where(by_id).correlate(None))
    return _CONTACTS.c.id.in_(owners)


async def identities_of(session: AsyncSession, ids: Iterable[str]) -> dict[str, dict[str, str]]:
    """contact id → {kind: value}."""
    wanted = list(set(ids))
    found: dict[str, dict[str, str]] = {cid: {} for cid in wanted}
    if not wanted:
        return found
    stmt = _identities_of(dialect_name(session))
    for row in await fetch(session, stmt, {"ids": wanted}):
        found[row["contact_id"]][row["kind"]] = row["value"]
    return found


@cache
def _identities_of(dialect: str) -> Select[Any]:
    # Rows, not ORM objects: dispatch reads the identities of every contact in a batch.
    columns = (_IDENTITIES.c.contact_id, _IDENTITIES.c.kind, _IDENTITIES.c.value)
    return select(*columns).where(any_of(dialect, _IDENTITIES.c.contact_id, "ids"))


async def insert_contacts(session: AsyncSession, rows: list[dict[str, Any]]) -> set[str]:
    """Insert contacts; returns the ids inserted (an id a concurrent request created is not)."""
    ordered = sorted(rows, key=_id_order)
    return {cid for (cid,) in await insert_new(session, _CONTACTS, ordered, returning=["id"])}


async def attach_identities(session: AsyncSession, rows: list[dict[str, str]]) -> set[Identity]:
    """Attach identities in key order (so concurrent writers cannot deadlock); returns those
    attached. One a concurrent transaction attached first is not: PostgreSQL waits for that
    transaction, then skips the row."""
    ordered = sorted(rows, key=_identity_order)
    attached = await insert_new(session, _IDENTITIES, ordered, returning=["kind", "value"])
    return {(kind, value) for kind, value in attached}


async def delete_contacts(session: AsyncSession, ids: Iterable[str]) -> None:
    wanted = list(ids)
    if wanted:
        await session.execute(delete(Contact).where(one_of(session, Contact.id, wanted)))


# Writes, for ``_sql.write_together``; rows in key order, so concurrent writers cannot deadlock.


def inserted(rows: list[dict[str, Any]]) -> Write:
    """New contacts; each must land (an id a concurrent request created first does not)."""
    return Write(_CONTACTS, sorted(rows, key=_id_order), "insert_new")


def identities_claimed(rows: list[dict[str, str]]) -> Write:
    """Identities of new contacts; each must land (see ``attach_identities``)."""
    return Write(_IDENTITIES, sorted(rows, key=_identity_order), "insert_new")


def identities_attached(rows: list[dict[str, str]]) -> Write:
    """Identities known contacts gained; one attached to another contact first stays there."""
    return Write(_IDENTITIES, sorted(rows, key=_identity_order), "insert_ignoring")


def updated(rows: list[dict[str, Any]]) -> Write:
    """The mutable columns of each row (keyed by ``id``)."""
    return Write(_CONTACTS, sorted(rows, key=_id_order), "update", _UPDATABLE)


def _id_order(row: dict[str, Any]) -> str:
    return str(row["id"])


def _identity_order(row: dict[str, str]) -> tuple[str, str]:
    return (row["kind"], row["value"])


async def get(session: AsyncSession, contact_id: str) -> Contact | None:
    return await session.get(Contact, contact_id)


async def opt_outs(session: AsyncSession, ids: Iterable[str]) -> dict[str, list[str]]:
    """contact id → the channels it opted out of ("*": all marketing)."""
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = await fetch(session, _opt_outs(dialect_name(session)), {"ids": wanted})
    return {row["id"]: list(row["opted_out"]) for row in rows}


@cache
def _opt_outs(dialect: str) -> Select[Any]:
    return select(_CONTACTS.c.id, _CONTACTS.c.opted_out).where(
        any_of(dialect, _CONTACTS.c.id, "ids")
    )
