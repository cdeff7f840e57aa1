"""GET /v1/channel-codes: each code with its report from the events (adds, deletions, orders,
refunds, on every database); GET …/{state}/qr redirects to WeCom's picture, or 404."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import select

from smr.channel_codes import FOLDER
from smr.models import ContactIdentity, Delivery, Event
from smr.runtime import Runtime, build_runtime
from smr.schemas import EventIn
from tests.adapters import wecom_fake as fake
from tests.conftest import BUNDLED, CORE, make_settings
from tests.helpers import INGEST, FakeClock, auth

CODES = """\
codes:
  - state: theatre-desk
    name: 剧场售票处
    staff: [zhangsan, lisi]
  - state: merch-counter
    name: 周边商品柜台
    staff: [wangwu]
"""
QR = "https://wework.qpic.cn/wwpic/desk/0"
T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
def playbooks_dir(tmp_path: Path) -> Path:
    """Policies and channel codes only: no playbook reacts to the events posted here."""
    folder = tmp_path / "playbooks"
    (folder / FOLDER).mkdir(parents=True)
    (folder / "policies.yaml").write_bytes((CORE / "policies.yaml").read_bytes())
    (folder / FOLDER / "codes.yaml").write_text(CODES, encoding="utf-8")
    return folder


@pytest.fixture
async def runtime(
    database_url: str, playbooks_dir: Path, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Runtime]:
    wecom = fake.settings(secret=None, contact_secret=fake.SECRET)
    settings = make_settings(database_url, playbooks_dir, tmp_path / "data", wecom=wecom)
    rt = build_runtime(settings, clock=clock)
    yield rt
    await rt.aclose()


def event(key: str, type_: str, customer: str, at: datetime, **data: Any) -> dict[str, Any]:
    return {
        "id": key,
        "type": type_,
        "occurred_at": at.isoformat(),
        "contact": {"wecom_userid": customer},
        "data": data,
    }


def order(key: str, type_: str, customer: str, at: datetime, total: str) -> dict[str, Any]:
    return event(key, type_, customer, at, order_id=f"o-{key}", total=total, currency="CNY")


HISTORY = [
    event("a-add", "contact.added", "wmA", T0, state="theatre-desk", staff="zhangsan"),
    event("b-add", "contact.added", "wmB", T0 + timedelta(hours=1), state="theatre-desk"),
    event("c-add", "contact.added", "wmC", T0, state="merch-counter"),
    event("d-add", "contact.added", "wmD", T0),  # no state: no code's
    order("b-before", "order.paid", "wmB", T0 - timedelta(days=1), "50.00"),  # before the add
    event("b-del", "contact.deleted", "wmB", T0 + timedelta(hours=2), by="customer"),
    order("a-1", "order.paid", "wmA", T0 + timedelta(days=1), "199.00"),
    order("a-2", "order.paid", "wmA", T0 + timedelta(days=2), "100.50"),
    order("a-2r", "order.refunded", "wmA", T0 + timedelta(days=3), "100.50"),
    order("d-1", "order.paid", "wmD", T0 + timedelta(days=1), "10.00"),
    event("a-add-2", "contact.added", "wmA", T0 + timedelta(days=4), state="theatre-desk"),
]


@pytest.fixture
async def history(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/events", json={"events": HISTORY}, headers=auth(INGEST))
    assert response.status_code == 202, response.text


def figures(code: dict[str, Any]) -> dict[str, Any]:
    report = code["report"]
    keys = ("adds", "deletions", "buyers", "orders", "refunds", "paid", "refunded", "revenue")
    return {key: report[key] for key in keys}


@pytest.mark.usefixtures("history")
async def test_the_report_counts_each_codes_contacts_from_their_add(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/channel-codes", headers=auth())

    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["managed"], answer["wecom"]) == (True, True)
    codes = {c["state"]: c for c in answer["codes"]}
    assert sorted(codes) == ["merch-counter", "theatre-desk"]
    assert figures(codes["theatre-desk"]) == {
        "adds": 2,
        "deletions": 1,
        "buyers": 1,
        "orders": 2,
        "refunds": 1,
        "paid": "299.50",
        "refunded": "100.50",
        "revenue": "199.00",
    }
    assert figures(codes["merch-counter"])["adds"] == 1
    assert figures(codes["merch-counter"])["orders"] == 0
    desk = codes["theatre-desk"]
    assert (desk["status"], desk["declared"], desk["qr_code"]) == ("pending", True, None)
    assert desk["staff"] == ["zhangsan", "lisi"]


@pytest.mark.usefixtures("history")
async def test_a_range_takes_the_adds_within_it_and_what_followed_until_its_end(
    client: httpx.AsyncClient,
) -> None:
    late = {"since": (T0 + timedelta(minutes=30)).isoformat()}
    early = {"until": (T0 + timedelta(days=1, hours=12)).isoformat()}

    after = await client.get("/v1/channel-codes/theatre-desk", params=late, headers=auth())
    before = await client.get("/v1/channel-codes/theatre-desk", params=early, headers=auth())

    assert after.status_code == before.status_code == 200
    assert figures(after.json()) | {"paid": None} == {
        "adds": 2,  # B; and A, added again on day 4, after all of its orders
        "deletions": 1,
        "buyers": 0,
        "orders": 0,
        "refunds": 0,
        "paid": None,
        "refunded": "0.00",
        "revenue": "0.00",
    }
    assert after.json()["report"]["since"] == late["since"]
    assert figures(before.json())["orders"] == 1
    assert figures(before.json())["paid"] == "199.00"


async def test_an_empty_range_and_an_unknown_code_are_problems(client: httpx.AsyncClient) -> None:
    params = {"since": T0.isoformat(), "until": T0.isoformat()}
    empty = await client.get("/v1/channel-codes", params=params, headers=auth())
    unknown = await client.get("/v1/channel-codes/no-such-code", headers=auth())
    malformed = await client.get("/v1/channel-codes/not a state", headers=auth())

    assert empty.status_code == 422
    assert empty.json()["errors"] == [
        {"path": "query.until", "message": "must be later than since"}
    ]
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    assert malformed.status_code == 422


@pytest.mark.respx(assert_all_called=False)
async def test_the_qr_redirects_to_wecoms_picture_once_made(
    client: httpx.AsyncClient, runtime: Runtime, respx_mock: respx.MockRouter
) -> None:
    fake.token_route(respx_mock)
    add = fake.api(respx_mock, "externalcontact/add_contact_way")
    # Codes are made in state order: merch-counter, then theatre-desk.
    add.mock(side_effect=[fake.err(40003), fake.ok(config_id="cfg-desk", qr_code=QR)])

    before = await client.get("/v1/channel-codes/theatre-desk/qr", headers=auth())
    assert runtime.channel_codes is not None
    await runtime.channel_codes.sync()
    made = await client.get("/v1/channel-codes/theatre-desk/qr", headers=auth())
    failed = await client.get("/v1/channel-codes/merch-counter/qr", headers=auth())
    listed = (await client.get("/v1/channel-codes/merch-counter", headers=auth())).json()

    assert before.status_code == 404
    assert before.headers["content-type"] == "application/problem+json"
    assert "no QR code" in before.json()["detail"]
    assert made.status_code == 307
    assert made.headers["location"] == QR
    assert failed.status_code == 404
    assert (listed["status"], listed["attempts"]) == ("failed", 1)
    assert "errcode=40003" in listed["last_error"]


async def test_a_code_without_welcome_is_not_greeted_by_the_bundled_welcome(
    database_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    folder = tmp_path / "bundled"
    (folder / FOLDER).mkdir(parents=True)
    for name in ("policies.yaml", "welcome.yaml"):
        (folder / name).write_bytes((BUNDLED / name).read_bytes())
    shutil.copytree(BUNDLED / "media", folder / "media")  # the welcome's card cover
    quiet = CODES.replace("    staff: [wangwu]\n", "    staff: [wangwu]\n    welcome: false\n")
    (folder / FOLDER / "codes.yaml").write_text(quiet, encoding="utf-8")
    runtime = build_runtime(make_settings(database_url, folder, tmp_path / "data"), clock=clock)
    added = [
        event("q-1", "contact.added", "wmQ", clock.now, state="merch-counter", welcome_code="W1"),
        event("g-1", "contact.added", "wmG", clock.now, state="theatre-desk", welcome_code="W2"),
    ]
    try:
        await runtime.ingest([EventIn.model_validate(e) for e in added], source="wecom")
        await runtime.process_pending()
        await runtime.settle()
        async with runtime.sessions() as session:
            welcomes = await session.scalars(
                select(Event.data).where(Event.type == "contact.added").order_by(Event.key)
            )
            codes = [data["channel_code"] for data in welcomes]
            greeted = await session.scalars(
                select(Delivery.contact_id).where(Delivery.channel == "wecom_welcome")
            )
            contacts = await session.scalars(
                select(ContactIdentity.value).where(ContactIdentity.contact_id.in_(list(greeted)))
            )
            greeted_customers = list(contacts)
    finally:
        await runtime.aclose()

    assert codes == [
        {"name": "剧场售票处", "kind": "person", "welcome": True},
        {"name": "周边商品柜台", "kind": "person", "welcome": False},
    ]
    assert greeted_customers == ["wmG"]
