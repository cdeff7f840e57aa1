"""Statements the repositories run on the driver (PostgreSQL) behave as through SQLAlchemy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError, StatementError

from smr.db import unit_of_work
from smr.models import Contact, Run, table_of
from smr.repositories import contacts as repo
from smr.repositories import runs as runs_repo
from smr.repositories._execute import _through_sqlalchemy, fetch, statements_commit_alone
from smr.repositories._sql import Write, write_together
from smr.repositories.contacts import Identity
from smr.repositories.runs import Watched
from smr.runtime import Runtime
from smr.services.contacts import ContactState, load_states

NOW = datetime(2026, 11, 23, 3, 0, 0, 123456, tzinfo=UTC)


class Boom(Exception):
    pass


def _row(contact_id: str) -> dict[str, object]:
    state = ContactState.blank(contact_id, NOW)
    state.name = "小王"
    state.tags = ["会员", "已购"]
    state.attributes = {"level": 3, "city": "杭州", "nested": {"a": [1, 2.5, None]}}
    state.opted_out = ["sms"]
    state.orders = 2
    state.total_spent = Decimal("12.30")
    state.first_order_at = NOW
    state.last_order_at = NOW
    state.monthly_spend = {"2026-11": "12.30"}
    return state.row(NOW)


async def test_rows_read_the_same_through_the_driver_and_through_sqlalchemy(
    runtime: Runtime,
) -> None:
    async with unit_of_work(runtime.sessions) as session:
        phone = {"kind": "phone", "value": "13800000000", "contact_id": "ct_full"}
        writes = [repo.inserted([_row("ct_full")]), repo.identities_claimed([phone])]
        assert await write_together(session, writes)

    contact = table_of(Contact)
    stmt = select(*contact.c).where(contact.c.id == bindparam("id"))
    async with unit_of_work(runtime.sessions) as session:
        # The driver's own records: a read-only mapping, compared here by its items.
        on_driver = dict((await fetch(session, stmt, {"id": "ct_full"}))[0])
        (through_sqlalchemy,) = await _through_sqlalchemy(session, stmt, {"id": "ct_full"})
        ((found, identities),) = await repo.find(session, identities=[("phone", "13800000000")])

    assert on_driver == through_sqlalchemy
    # find adds each contact's version on PostgreSQL (for writes that check it).
    extra = (repo.IDENTITY_KIND, repo.IDENTITY_VALUE, repo.VERSION)
    assert {k: v for k, v in found.items() if k not in extra} == on_driver
    assert [type(v) for v in on_driver.values()] == [type(v) for v in through_sqlalchemy.values()]
    assert identities == {"phone": "13800000000"}
    row = on_driver
    assert str(row["total_spent"]) == "12.30"
    assert row["created_at"] == NOW
    assert row["created_at"].tzinfo is not None
    assert row["attributes"]["nested"] == {"a": [1, 2.5, None]}


async def test_a_created_contact_reads_back_as_its_blank_state(runtime: Runtime) -> None:
    blank = ContactState.blank("ct_new", NOW, identities={"phone": "13900000000"})
    async with unit_of_work(runtime.sessions) as session:
        phone = {"kind": "phone", "value": "13900000000", "contact_id": "ct_new"}
        writes = [repo.inserted([blank.row(NOW)]), repo.identities_claimed([phone])]
        assert await write_together(session, writes)

    async with unit_of_work(runtime.sessions) as session:
        stored = (await load_states(session, ["ct_new"]))["ct_new"]

    stored.is_new = stored.pending = True
    assert stored == blank
    assert str(stored.total_spent) == str(blank.total_spent)  # same scale: templates print it


async def test_statements_on_the_driver_roll_back_with_the_transaction(runtime: Runtime) -> None:
    async def write_then_fail() -> None:
        async with unit_of_work(runtime.sessions) as session:
            assert await write_together(session, [repo.inserted([_row("ct_gone")])])
            assert await write_together(session, [repo.updated([_row("ct_gone")])])
            raise Boom

    with pytest.raises(Boom):
        await write_then_fail()
    async with runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Contact)) == 0


async def test_errors_on_the_driver_are_sqlalchemy_errors(runtime: Runtime) -> None:
    async def attach_to_nobody() -> None:
        async with unit_of_work(runtime.sessions) as session:
            await repo.find(session, ids=["ct_other"])
            nobody = {"kind": "phone", "value": "1", "contact_id": "ct_missing"}
            await write_together(session, [repo.identities_attached([nobody])])

    with pytest.raises(IntegrityError):
        await attach_to_nobody()


async def test_writes_together_land_only_when_every_new_row_does(runtime: Runtime) -> None:
    async with unit_of_work(runtime.sessions) as session:
        assert await write_together(session, [repo.inserted([_row("ct_a")])])
    renamed = {**_row("ct_a"), "name": "改名"}

    async with unit_of_work(runtime.sessions) as session:
        again = [repo.inserted([_row("ct_a")]), repo.updated([renamed])]
        assert not await write_together(session, again)
        ((unchanged, _),) = await repo.find(session, ids=["ct_a"])
        fresh = [repo.inserted([_row("ct_b")]), repo.updated([renamed])]
        assert await write_together(session, fresh)
        ((changed, _),) = await repo.find(session, ids=["ct_a"])

    assert unchanged["name"] == "小王"
    assert changed["name"] == "改名"


async def test_statements_that_commit_alone_write_all_or_nothing(runtime: Runtime) -> None:
    async with unit_of_work(runtime.sessions) as session:
        assert await write_together(session, [repo.inserted([_row("ct_a")])])
    async with unit_of_work(runtime.sessions) as session:
        ((read, _),) = await repo.find(session, ids=["ct_a"], lock=False)
    seen = {**_row("ct_a"), "name": "改名", repo.VERSION: read.get(repo.VERSION)}

    async def alone(writes: list[Write]) -> bool:
        async with unit_of_work(runtime.sessions) as session:
            alone = statements_commit_alone(session)
            assert alone == (session.get_bind().dialect.name == "postgresql")
            landed = await write_together(session, writes)
            if not landed:
                await session.rollback()  # as callers do; nothing to undo when alone
            return landed

    # A new contact with one already stored: neither lands.
    assert not await alone([repo.inserted([_row("ct_new")]), repo.inserted([_row("ct_a")])])
    # The contact as read, then changed by someone else: the first write lands, the second not.
    assert await alone([repo.updated_unchanged([seen]), repo.inserted([_row("ct_b")])])
    stale = [repo.updated_unchanged([{**seen, "name": "又改"}]), repo.inserted([_row("ct_c")])]
    landed = await alone(stale)

    async with unit_of_work(runtime.sessions) as session:
        found = {row["id"]: row["name"] for row, _ in await repo.find(session, ids=STORED_IDS)}
    if session.get_bind().dialect.name == "postgresql":
        assert not landed
        assert found == {"ct_a": "改名", "ct_b": "小王"}
    else:  # SQLite's writers take turns from the start of their transactions: no versions
        assert landed
        assert found == {"ct_a": "又改", "ct_b": "小王", "ct_c": "小王"}


STORED_IDS = ["ct_a", "ct_b", "ct_c", "ct_new"]


async def test_times_in_bulk_writes_are_stored_as_utc_and_naive_ones_refused(
    runtime: Runtime,
) -> None:
    beijing = NOW.astimezone(timezone(timedelta(hours=8)))
    async with unit_of_work(runtime.sessions) as session:
        local = {**_row("ct_local"), "first_order_at": beijing}
        assert await write_together(session, [repo.inserted([local, _row("ct_utc")])])
    async with unit_of_work(runtime.sessions) as session:
        states = await load_states(session, ["ct_local", "ct_utc"])
    assert states["ct_local"].first_order_at == NOW
    assert states["ct_local"].first_order_at.utcoffset() == timedelta(0)

    naive = {**_row("ct_naive"), "first_order_at": NOW.replace(tzinfo=None)}
    with pytest.raises((ValueError, StatementError), match="naive datetime refused"):
        async with unit_of_work(runtime.sessions) as session:
            await write_together(session, [repo.inserted([_row("ct_fine"), naive])])
    async with runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Contact)) == 2


async def test_contacts_are_found_by_exactly_the_keys_asked_one_or_several(
    runtime: Runtime,
) -> None:
    owners = {"ct_p1": ("phone", "1"), "ct_w2": ("wecom_userid", "2"), "ct_p2": ("phone", "2")}
    async with unit_of_work(runtime.sessions) as session:
        rows = [_row(cid) for cid in owners]
        claimed = [{"kind": k, "value": v, "contact_id": cid} for cid, (k, v) in owners.items()]
        assert await write_together(
            session, [repo.inserted(rows), repo.identities_claimed(claimed)]
        )

    async def found(
        ids: list[str] | None = None, identities: list[Identity] | None = None
    ) -> set[str]:
        async with unit_of_work(runtime.sessions) as session:
            contacts = await repo.find(session, ids=ids or [], identities=identities or [])
            return {row["id"] for row, _ in contacts}

    assert await found(identities=[("phone", "1")]) == {"ct_p1"}
    assert await found(ids=["ct_w2"]) == {"ct_w2"}
    assert await found(ids=["ct_w2", "ct_p2", "ct_none"]) == {"ct_w2", "ct_p2"}
    assert await found(ids=["ct_p2"], identities=[("phone", "1")]) == {"ct_p1", "ct_p2"}
    several = await found(identities=[("phone", "1"), ("wecom_userid", "2")])
    async with runtime.sessions() as session:
        dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        assert several == {"ct_p1", "ct_w2"}  # each pair as asked, not every kind with every value
    else:
        assert {"ct_p1", "ct_w2"} <= several


async def test_a_single_row_write_stores_the_same_as_several(runtime: Runtime) -> None:
    async with unit_of_work(runtime.sessions) as session:
        assert await write_together(session, [repo.inserted([_row("ct_one")])])
        assert await write_together(session, [repo.inserted([_row("ct_x"), _row("ct_y")])])
    changed = {**_row("ct_one"), "tags": ["新标签"], "attributes": {"k": [1, {"n": None}]}}
    changed_too = {**_row("ct_x"), "orders": 7, "total_spent": Decimal("99.90")}
    async with unit_of_work(runtime.sessions) as session:
        assert await write_together(session, [repo.updated([changed])])
        assert await write_together(session, [repo.updated([changed_too, _row("ct_y")])])
    async with unit_of_work(runtime.sessions) as session:
        states = await load_states(session, ["ct_one", "ct_x", "ct_y"])
    assert states["ct_one"].tags == ["新标签"]
    assert states["ct_one"].attributes == {"k": [1, {"n": None}]}
    assert states["ct_one"].first_order_at == NOW
    assert (states["ct_x"].orders, states["ct_x"].total_spent) == (7, Decimal("99.90"))
    assert states["ct_y"].row(NOW) == _row("ct_y")

    naive = {**_row("ct_naive"), "first_order_at": NOW.replace(tzinfo=None)}
    with pytest.raises((ValueError, StatementError), match="naive datetime refused"):
        async with unit_of_work(runtime.sessions) as session:
            await write_together(session, [repo.inserted([naive])])


async def test_runs_read_with_contacts_are_those_history_reads(runtime: Runtime) -> None:
    runs = table_of(Run)
    # (id, playbook, status, started minutes before NOW)
    stored = [
        ("run_1", "pb-a", "completed", 30),  # old and over: neither reads it
        ("run_2", "pb-a", "waiting", 20),
        ("run_3", "pb-b", "completed", 5),  # over, but within a 10-minute cooldown
        ("run_4", "pb-a", "active", 1),
        ("run_5", "pb-c", "active", 1),  # a playbook nobody watches
    ]
    async with unit_of_work(runtime.sessions) as session:
        assert await write_together(session, [repo.inserted([_row("ct_runs")])])
        await session.execute(
            runs.insert(),
            [
                {
                    "id": run_id,
                    "contact_id": "ct_runs",
                    "playbook_id": playbook,
                    "playbook_version": "v1",
                    "status": status,
                    "pc": 0,
                    "started_at": NOW - timedelta(minutes=ago),
                    "updated_at": NOW,
                }
                for run_id, playbook, status, ago in stored
            ],
        )

    for since in (None, NOW - timedelta(minutes=10)):
        watched = Watched(frozenset({"pb-a", "pb-b"}), since=since)
        async with unit_of_work(runtime.sessions) as session:
            queried = await runs_repo.history(session, contact_ids=["ct_runs"], watched=watched)
            if session.get_bind().dialect.name != "postgresql":
                with pytest.raises(ValueError, match="unlocked, on PostgreSQL"):
                    await repo.find(session, ids=["ct_runs"], lock=False, runs=watched)
                continue
            ((row, _),) = await repo.find(session, ids=["ct_runs"], lock=False, runs=watched)
            with pytest.raises(ValueError, match="unlocked, on PostgreSQL"):
                await repo.find(session, ids=["ct_runs"], runs=watched)
        read = runs_repo.histories((("ct_runs", run) for run in row[repo.RUNS]), watched)
        assert read == queried
        expected_starts = {"pb-a": NOW - timedelta(minutes=1)}
        if since is not None:
            expected_starts["pb-b"] = NOW - timedelta(minutes=5)
        assert {p: h.last_started_at for (_, p), h in read.items()} == expected_starts
        assert read["ct_runs", "pb-a"].active_run_ids == ["run_2", "run_4"]
