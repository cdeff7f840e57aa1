"""Contacts and the identities that resolve to them."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Select, delete, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from smr.models import Contact, ContactIdentity, Event, table_of
from smr.repositories._bulk import Write, insert_new
from smr.repositories._sql import any_of, dialect_name, each_key, key_params, one_of

Identity = tuple[str, str]
#: A contact's columns, and its identities (kind → value).
LoadedContact = tuple[Mapping[str, Any], dict[str, str]]

#: The columns of ``find``'s rows that hold one of the contact's identities (the contact's own
#: columns include its ``kind``, so these are labelled apart).
IDENTITY_KIND, IDENTITY_VALUE = "identity_kind", "identity_value"

_CONTACTS = table_of(Contact)
_IDENTITIES = table_of(ContactIdentity)

#: A contact's columns that say something about the person, blanked: what an erasure and a
#: merge leave of them (an erasure keeps the order stats; a merge moves them to the survivor).
PERSON_BLANKED: dict[str, Any] = {
    "name": None,
    "tags": [],
    "attributes": {},
    "opted_out": [],
    "consents": {},
    "purchases": {},
    "segments": [],
    "last_seen_at": None,
    "last_message_at": None,
}

_UPDATABLE = (
    "name",
    "tags",
    "attributes",
    "opted_out",
    "consents",
    "purchases",
    "segments",
    "orders",
    "total_spent",
    "first_order_at",
    "last_order_at",
    "last_seen_at",
    "last_message_at",
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
    in one query; unless ``lock`` is False, locked (PostgreSQL) in id order, so concurrent
    writers neither lose each other's updates nor deadlock.

    On SQLite a contact owning an identity value under another kind may come too; callers pick
    what they asked for.
    """
    if not ids and not identities:
        return []
    asked_ids, pairs = [(cid,) for cid in set(ids)], list(set(identities))
    stmt = _contacts(dialect_name(session), ids=_count(asked_ids), pairs=_count(pairs), lock=lock)
    params = {**key_params(asked_ids, ["ids"]), **key_params(pairs, ["kinds", "values"])}
    found: dict[str, LoadedContact] = {}
    for row in (await session.execute(stmt, params)).mappings():
        _, known = found.setdefault(row["id"], (row, {}))
        if row[IDENTITY_KIND] is not None:
            known[row[IDENTITY_KIND]] = row[IDENTITY_VALUE]
    return list(found.values())


def _count(keys: Collection[Any]) -> int:
    """0, 1 or 2 for "several": what tells the statements ``_contacts`` builds apart."""
    return min(len(keys), 2)


@cache
def _contacts(dialect: str, *, ids: int, pairs: int, lock: bool) -> Select[Any]:
    """Contacts by id (``ids`` of them) or by an identity they own (``pairs``), each with all
    its identities (``_count`` gives the counts)."""
    by_id = each_key(dialect, _CONTACTS, [("id", "ids")], ["id"], single=ids == 1)
    keys = [("kind", "kinds"), ("value", "values")]
    owners = each_key(dialect, _IDENTITIES, keys, ["contact_id"], single=pairs == 1)
    # A union rather than an OR, so that each side stays an index lookup.
    chosen: Any = union_all(owners, by_id) if ids and pairs else owners if pairs else by_id
    stmt = (
        select(
            *_CONTACTS.c,
            _IDENTITIES.c.kind.label(IDENTITY_KIND),
            _IDENTITIES.c.value.label(IDENTITY_VALUE),
        )
        .outerjoin(_IDENTITIES, _IDENTITIES.c.contact_id == _CONTACTS.c.id)
        .where(_CONTACTS.c.id.in_(chosen))
        .order_by(_CONTACTS.c.id)
    )
    return stmt.with_for_update(of=_CONTACTS) if lock else stmt


async def identities_of(session: AsyncSession, ids: Iterable[str]) -> dict[str, dict[str, str]]:
    """contact id → {kind: value}."""
    wanted = list(set(ids))
    found: dict[str, dict[str, str]] = {cid: {} for cid in wanted}
    if not wanted:
        return found
    stmt = _identities_of(dialect_name(session))
    for row in (await session.execute(stmt, {"ids": wanted})).mappings():
        found[row["contact_id"]][row["kind"]] = row["value"]
    return found


@cache
def _identities_of(dialect: str) -> Select[Any]:
    # Rows, not ORM objects: dispatch reads the identities of every contact in a batch. Each
    # contact looked up on its own (``each_key``): ``= ANY($1)`` got a generic plan scanning
    # the whole table, which took half of PostgreSQL's time while a worker sent.
    columns = ["contact_id", "kind", "value"]
    return each_key(dialect, _IDENTITIES, [("contact_id", "ids")], columns)


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


async def discard_new(session: AsyncSession, ids: Iterable[str]) -> None:
    """Delete contacts inserted in this transaction, with the identities and events stored
    for them (an import's new customers that a concurrent writer raced)."""
    wanted = list(ids)
    if wanted:
        await session.execute(delete(Event).where(one_of(session, Event.contact_id, wanted)))
        await session.execute(
            delete(ContactIdentity).where(one_of(session, ContactIdentity.contact_id, wanted))
        )
        await delete_contacts(session, wanted)


# Writes, for ``_bulk.write_together``; rows in key order, so concurrent writers cannot deadlock.


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


@dataclass(frozen=True)
class Permissions:
    """What a contact allows of marketing: the channels it opted out of ("*": all), and those
    it consented to."""

    opted_out: list[str]
    consented: frozenset[str]


#: Of a contact not read (a service delivery's): no opt-out, no consent.
NOTHING_ALLOWED = Permissions([], frozenset())


async def permissions(
    session: AsyncSession, ids: Iterable[str], *, hold: bool = False
) -> dict[str, Permissions]:
    """contact id → what it allows of marketing.

    ``hold``: also lock the contacts until the transaction ends, passing over those another
    transaction holds (PostgreSQL: FOR NO KEY UPDATE SKIP LOCKED, in id order); those are
    missing from the answer. SQLite's writers take turns, so every contact is answered."""
    wanted = list(set(ids))
    if not wanted:
        return {}
    stmt = _permissions(dialect_name(session), hold=hold)
    return {
        row.id: Permissions(list(row.opted_out), frozenset(row.consents))
        for row in await session.execute(stmt, {"ids": wanted})
    }


@cache
def _permissions(dialect: str, *, hold: bool) -> Select[Any]:
    columns = (_CONTACTS.c.id, _CONTACTS.c.opted_out, _CONTACTS.c.consents)
    stmt = select(*columns).where(any_of(dialect, _CONTACTS.c.id, "ids"))
    if hold:
        stmt = stmt.order_by(_CONTACTS.c.id).with_for_update(skip_locked=True, key_share=True)
    return stmt
