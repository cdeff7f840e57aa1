"""Importing customers and their history, on every test database: they go in with their
orders counted, nobody is messaged, a bad line is reported by its number, merges happen as
for events, and an import run again changes nothing."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from smr.cli import app
from smr.db import unit_of_work
from smr.importing import Line, read
from smr.models import Contact, Delivery, Event, Run, SegmentMember
from smr.runtime import Runtime
from smr.services import import_new
from smr.services.imports import import_lines
from tests.conftest import CORE
from tests.helpers import INGEST, FakeClock, auth, contact_of

WASH = [{"sku": "FACE-WASH", "name": "洗面奶", "quantity": 2}]
LINES: list[Any] = [
    {
        "phone": "13800000001",
        "name": "王小姐",
        "tags": ["老客", "老客"],
        "attributes": {"城市": "上海"},
        "orders": [
            {
                "order_id": "A1",
                "total": 199,
                "occurred_at": "2025-06-01T10:00:00+08:00",
                "items": WASH,
            },
            {"order_id": "A2", "total": 2500, "occurred_at": "2025-07-01T10:00:00+08:00"},
            {
                "order_id": "A1",
                "status": "refunded",
                "total": 99,
                "occurred_at": "2025-06-03T10:00:00+08:00",
                "items": [{"sku": "FACE-WASH", "quantity": 1}],
            },
        ],
    },
    {"phone": "12"},
    {"wecom_userid": "wm-2", "name": "李先生"},
    "not a customer",
]


@pytest.fixture
def playbooks_dir(tmp_path: Path) -> Path:
    """The core playbooks (an order thanks, a welcome) and a segment of big spenders."""
    folder = tmp_path / "playbooks"
    shutil.copytree(CORE, folder)
    (folder / "segments").mkdir()
    (folder / "segments" / "big.yaml").write_text(
        'id: 大客户\nif: "contact.stats.total_spent >= 1000"\n', encoding="utf-8"
    )
    return folder


def jsonl(lines: list[Any]) -> str:
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)


async def imported(client: httpx.AsyncClient, body: str, kind: str = "application/x-ndjson") -> Any:
    answer = await client.post(
        "/v1/contacts/import", content=body.encode(), headers={**auth(), "content-type": kind}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


async def counts(runtime: Runtime) -> dict[str, int]:
    async with runtime.sessions() as session:
        return {
            name: int(await session.scalar(select(func.count()).select_from(model)) or 0)
            for name, model in [
                ("contacts", Contact),
                ("events", Event),
                ("runs", Run),
                ("deliveries", Delivery),
                ("segment_members", SegmentMember),
            ]
        }


async def test_customers_and_their_orders_go_in_and_nobody_is_messaged(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    done = await imported(client, jsonl(LINES))

    assert {k: done[k] for k in ("lines", "created", "orders", "orders_known", "triggered")} == {
        "lines": 4,
        "created": 2,
        "orders": 3,
        "orders_known": 0,
        "triggered": 0,
    }
    assert [(e["line"], e["path"]) for e in done["errors"]] == [(2, "phone"), (4, "")]
    found = await client.get("/v1/contacts", params={"phone": "13800000001"}, headers=auth())
    contact = found.json()
    assert (contact["name"], contact["tags"], contact["attributes"]) == (
        "王小姐",
        ["老客"],
        {"城市": "上海"},
    )
    assert (contact["stats"]["orders"], contact["stats"]["total_spent"]) == (2, "2600.00")
    wash = contact["purchases"]["skus"]["FACE-WASH"]
    assert (wash["quantity"], wash["refunded"]) == (1, 1)
    assert contact["segments"] == ["大客户"]
    assert contact["last_seen_at"].startswith("2025-07-01")
    stored = await counts(runtime)
    assert (stored["runs"], stored["deliveries"]) == (0, 0)  # the order thanks never ran
    async with runtime.sessions() as session:
        sources = set(await session.scalars(select(Event.source)))
    assert sources == {"import"}  # no segment entry posted: an import fills silently


async def test_an_import_run_again_changes_nothing(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await imported(client, jsonl(LINES))
    before = await counts(runtime)
    async with runtime.sessions() as session:
        rows = (await session.execute(select(Contact.id, Contact.updated_at))).all()

    again = await imported(client, jsonl(LINES))

    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 2)
    assert (again["orders"], again["orders_known"]) == (0, 3)
    assert await counts(runtime) == before
    async with runtime.sessions() as session:
        assert (await session.execute(select(Contact.id, Contact.updated_at))).all() == rows


async def test_an_import_merges_the_contacts_a_line_links(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    order = {
        "id": "o-1",
        "type": "order.paid",
        "contact": {"shop_customer_id": "S-1"},
        "data": {"order_id": "live-1", "total": 10},
    }
    answer = await client.post("/v1/events", json=order, headers=auth(INGEST))
    shop = await contact_of(client, answer.json())
    await imported(client, jsonl([{"phone": "13800000001"}]))

    done = await imported(client, jsonl([{"phone": "13800000001", "shop_customer_id": "S-1"}]))

    assert done["merged"] == 1
    found = await client.get("/v1/contacts", params={"phone": "13800000001"}, headers=auth())
    assert found.json()["id"] == shop  # the older one
    assert found.json()["identities"] == {"phone": "13800000001", "shop_customer_id": "S-1"}


async def test_a_csv_file_with_attribute_columns(client: httpx.AsyncClient) -> None:
    body = "phone,name,tags,attr.城市\n13800000002,李先生,会员|老客,北京\n,无名,,\n"

    done = await imported(client, body, kind="text/csv")

    assert done["created"] == 1
    assert [(e["line"], e["message"]) for e in done["errors"]] == [
        (3, "needs at least one of id, phone, wecom_userid, shop_customer_id")
    ]
    found = await client.get("/v1/contacts", params={"phone": "13800000002"}, headers=auth())
    assert (found.json()["tags"], found.json()["attributes"]) == (
        ["会员", "老客"],
        {"城市": "北京"},
    )


async def test_smr_import_reports_bad_lines_by_number_and_says_nobody_was_messaged(
    runtime: Runtime,
    database_url: str,
    playbooks_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    file = tmp_path / "customers.jsonl"
    file.write_text(jsonl(LINES), encoding="utf-8")
    monkeypatch.setenv("SMR_DATABASE_URL", database_url)
    monkeypatch.setenv("SMR_PLAYBOOKS_DIR", str(playbooks_dir))
    monkeypatch.setenv("SMR_DATA_DIR", str(tmp_path / "data"))

    # In a thread: the command runs its own event loop, as from a shell.
    result = await asyncio.to_thread(CliRunner().invoke, app, ["import", str(file)])

    assert result.exit_code == 1, result.output
    assert "customers.jsonl:2: phone: " in result.stderr
    assert "customers.jsonl:4: expected a JSON object" in result.stderr
    assert "2 of 4 lines imported" in result.stdout
    assert "No playbook was started and nobody was messaged" in result.stdout
    assert (await counts(runtime))["contacts"] == 2


def paid(order_id: str, total: int = 100) -> dict[str, Any]:
    return {"order_id": order_id, "total": total, "occurred_at": "2025-06-01T10:00:00+08:00"}


async def test_new_customers_a_concurrent_writer_claimed_first_go_the_way_of_events(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    """Between the look-up of a chunk and its insert, an event claims one new line's phone and
    another import stores another line's order: those lines are taken out again, whole, and
    then found as events find their customers."""
    rows = [
        {"phone": "13800000011", "name": "甲", "orders": [paid("B1")]},
        {"phone": "13800000012", "name": "乙", "orders": [paid("B2")]},
        {"phone": "13800000013", "name": "丙", "orders": [paid("B3")]},
    ]
    lines = list(read(io.StringIO(jsonl(rows)), format="jsonl"))
    good = [line for line in lines if isinstance(line, Line)]
    async with runtime.sessions() as session:
        new, known = await import_new.split(session, good)
    assert (len(new), known) == (3, [])
    added = {"id": "add-1", "type": "contact.added", "contact": {"phone": "13800000011"}}
    first = await contact_of(
        client, (await client.post("/v1/events", json=added, headers=auth(INGEST))).json()
    )
    await imported(client, jsonl([{"shop_customer_id": "S-9", "orders": [paid("B2")]}]))

    async with unit_of_work(runtime.sessions) as session:
        created = await import_new.create(session, new, catalog=runtime.catalog, now=clock.now)

    assert [line.number for line in created.raced] == [1, 2]
    assert ([s.name for s in created.contacts], created.orders) == (["丙"], 1)
    assert (await counts(runtime))["contacts"] == 3  # 甲's event, S-9 and 丙: no leftovers
    done = await import_lines(
        runtime.sessions,
        created.raced,
        catalog=runtime.catalog,
        now=runtime.clock,
        merge_by=runtime.settings.merge_by,
    )
    assert (done.created, done.updated, done.orders, done.orders_known) == (1, 1, 1, 1)
    found = await client.get("/v1/contacts", params={"phone": "13800000011"}, headers=auth())
    assert (found.json()["id"], found.json()["name"], found.json()["stats"]["orders"]) == (
        first,
        "甲",
        1,
    )


async def test_smr_import_with_several_processes_imports_each_line_once(
    runtime: Runtime,
    database_url: str,
    playbooks_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two processes take runs of 5 lines in turn; a customer on lines of both (their orders
    counted once each) is one contact, and bad lines are reported in the file's order."""
    rows: list[Any] = [
        {"phone": f"139{i:08d}", "orders": [paid(f"P{i}", total=i)]} for i in range(1, 31)
    ]
    rows[3] = {"phone": "12"}
    rows[12] = "not a customer"
    rows[27] = {"phone": "13900000001", "orders": [paid("P28", total=28)]}  # line 1's again
    file = tmp_path / "customers.jsonl"
    file.write_text(jsonl(rows), encoding="utf-8")
    monkeypatch.setenv("SMR_DATABASE_URL", database_url)
    monkeypatch.setenv("SMR_PLAYBOOKS_DIR", str(playbooks_dir))
    monkeypatch.setenv("SMR_DATA_DIR", str(tmp_path / "data"))

    command = ["import", str(file), "--jobs", "2", "--chunk", "5"]
    result = await asyncio.to_thread(CliRunner().invoke, app, command)

    assert result.exit_code == 1, result.output
    refused = [line.split(": ")[0] for line in result.stderr.splitlines() if ".jsonl:" in line]
    assert refused == ["customers.jsonl:4", "customers.jsonl:13"]
    assert "28 of 30 lines imported" in result.stdout
    assert "27 new customers" in result.stdout
    assert "28 historical orders counted" in result.stdout
    stored = await counts(runtime)
    assert (stored["contacts"], stored["events"], stored["runs"]) == (27, 28, 0)
    async with runtime.sessions() as session:
        twice = list(await session.scalars(select(Contact).where(Contact.orders == 2)))
    assert [str(contact.total_spent) for contact in twice] == ["29.00"]  # lines 1 and 28
