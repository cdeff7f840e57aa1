"""The repositories' bulk statements store rows as they read back, on SQLite and PostgreSQL:
one row or many, inserted or updated, alone or written together."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import StatementError

from smr.db import unit_of_work
from smr.models import Contact, Run, table_of
from smr.repositories import contacts as repo
from smr.repositories import runs as runs_repo
from smr.repositories._bulk import Write, insert_many, write_together
from smr.repositories.contacts import Identity
from smr.repositories.runs import Watched
from smr.runtime import Runtime
from smr.services.contacts import ContactState, load_states

NOW = datetime(2026, 11, 23, 3, 0, 0, 123456, tzinfo=UTC)


class Boom(Exception):
    pass


def _row(contact_id: str) -> dict[str, object]:
    state = ContactState.blank(contact_id, NOW, partition=0)
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


def _new(rows: list[dict[str, Any]]) -> Write:
    """New contacts for ``write_together``."""
    return Write(table_of(Contact), rows, "insert")


async def test_a_stored_contact_reads_back_as_it_was_written(runtime: Runtime) -> None:
    async with unit_of_work(runtime.sessions) as session:
        assert await repo.insert_contacts(session, [_row("ct_full")]) == {"ct_full"}
        phone = {"kind": "phone", "value": "13800000000", "contact_id": "ct_full"}
        assert await repo.attach_identities(session, [phone]) == {("phone", "13800000000")}

    async with unit_of_work(runtime.sessions) as session:
        ((found, identities),) = await repo.find(session, identities=[("phone", "13800000000")])

    written = _row("ct_full")
    assert {k: found[k] for k in written} == written
    assert identities == {"phone": "13800000000"}
    assert str(found["total_spent"]) == "12.30"
    assert found["created_at"].tzinfo is not None
    assert found["attributes"]["nested"] == {"a": [1, 2.5, None]}


async def test_a_created_contact_reads_back_as_its_blank_state(runtime: Runtime) -> None:
    blank = ContactState.blank("ct_new", NOW, partition=0, identities={"phone": "13900000000"})
    async with unit_of_work(runtime.sessions) as session:
        assert await repo.insert_contacts(session, [blank.row(NOW)]) == {"ct_new"}
        phone = {"kind": "phone", "value": "13900000000", "contact_id": "ct_new"}
        assert await repo.attach_identities(session, [phone])

    async with unit_of_work(runtime.sessions) as session:
        stored = (await load_states(session, ["ct_new"]))["ct_new"]

    stored.is_new = True
    assert stored == blank
    assert str(stored.total_spent) == str(blank.total_spent)  # same scale: templates print it


async def test_writes_together_roll_back_with_the_transaction(runtime: Runtime) -> None:
    async def write_then_fail() -> None:
        async with unit_of_work(runtime.sessions) as session:
            await write_together(session, [_new([_row("ct_gone")])])
            await write_together(session, [repo.updated([_row("ct_gone")])])
            raise Boom

    with pytest.raises(Boom):
        await write_then_fail()
    async with runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Contact)) == 0


async def test_times_in_bulk_writes_are_stored_as_utc_and_naive_ones_refused(
    runtime: Runtime,
) -> None:
    beijing = NOW.astimezone(timezone(timedelta(hours=8)))
    async with unit_of_work(runtime.sessions) as session:
        local = {**_row("ct_local"), "first_order_at": beijing}
        await write_together(session, [_new([local, _row("ct_utc")])])
    async with unit_of_work(runtime.sessions) as session:
        states = await load_states(session, ["ct_local", "ct_utc"])
    assert states["ct_local"].first_order_at == NOW
    assert states["ct_local"].first_order_at.utcoffset() == timedelta(0)

    naive = {**_row("ct_naive"), "first_order_at": NOW.replace(tzinfo=None)}
    with pytest.raises((ValueError, StatementError), match="naive datetime refused"):
        async with unit_of_work(runtime.sessions) as session:
            await write_together(session, [_new([_row("ct_fine"), naive])])
    async with runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Contact)) == 2


async def test_many_rows_inserted_at_once_read_back_as_written(runtime: Runtime) -> None:
    ids = [f"ct_{n:02d}" for n in range(12)]
    rows = [_row(contact_id) for contact_id in ids]
    async with unit_of_work(runtime.sessions) as session:
        await insert_many(session, table_of(Contact), rows)
    async with unit_of_work(runtime.sessions) as session:
        states = await load_states(session, ids)
    assert [states[contact_id].row(NOW) for contact_id in ids] == rows


async def test_contacts_are_found_by_exactly_the_keys_asked_one_or_several(
    runtime: Runtime,
) -> None:
    owners = {"ct_p1": ("phone", "1"), "ct_w2": ("wecom_userid", "2"), "ct_p2": ("phone", "2")}
    async with unit_of_work(runtime.sessions) as session:
        rows = [_row(cid) for cid in owners]
        claimed = [{"kind": k, "value": v, "contact_id": cid} for cid, (k, v) in owners.items()]
        assert len(await repo.insert_contacts(session, rows)) == len(rows)
        assert len(await repo.attach_identities(session, claimed)) == len(claimed)

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
        await write_together(session, [_new([_row("ct_one")])])
        await write_together(session, [_new([_row("ct_x"), _row("ct_y")])])
    changed = {**_row("ct_one"), "tags": ["新标签"], "attributes": {"k": [1, {"n": None}]}}
    changed_too = {**_row("ct_x"), "orders": 7, "total_spent": Decimal("99.90")}
    async with unit_of_work(runtime.sessions) as session:
        await write_together(session, [repo.updated([changed])])
        await write_together(session, [repo.updated([changed_too, _row("ct_y")])])
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
            await write_together(session, [_new([naive])])


async def test_history_reads_active_runs_and_those_started_within_the_cooldown(
    runtime: Runtime,
) -> None:
    runs = table_of(Run)
    # (id, playbook, status, started minutes before NOW)
    stored = [
        ("run_1", "pb-a", "completed", 30),  # old and over: not read
        ("run_2", "pb-a", "waiting", 20),
        ("run_3", "pb-b", "completed", 5),  # over, but within a 10-minute cooldown
        ("run_4", "pb-a", "active", 1),
        ("run_5", "pb-c", "active", 1),  # a playbook nobody watches
    ]
    async with unit_of_work(runtime.sessions) as session:
        assert await repo.insert_contacts(session, [_row("ct_runs")])
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
            read = await runs_repo.history(session, contact_ids=["ct_runs"], watched=watched)
        expected_starts = {"pb-a": NOW - timedelta(minutes=1)}
        if since is not None:
            expected_starts["pb-b"] = NOW - timedelta(minutes=5)
        assert {p: h.last_started_at for (_, p), h in read.items()} == expected_starts
        assert read["ct_runs", "pb-a"].active_run_ids == ["run_2", "run_4"]
