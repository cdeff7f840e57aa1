"""The bundled referral and points tactics, on every test database: a friend added through the
inviter's channel code credits the inviter (an emit step posts an event for another contact),
points are a ledger of attributes (one whose name is a template), and a balance expires."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from smr.runtime import Runtime
from tests.conftest import BUNDLED
from tests.helpers import INGEST, FakeClock, auth, contact_of

TACTICS = ("referral.yaml", "referral-reward.yaml", "points.yaml", "points-expiry.yaml")


@pytest.fixture
def playbooks_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "playbooks"
    folder.mkdir()
    for name in (*TACTICS, "policies.yaml"):
        shutil.copy(BUNDLED / name, folder / name)
    return folder


async def post(client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    answer = await client.post("/v1/events", json=body, headers=auth(INGEST))
    assert answer.status_code == 202, answer.text
    return await contact_of(client, answer.json())


async def contact(client: httpx.AsyncClient, contact_id: str) -> dict[str, Any]:
    found: dict[str, Any] = (await client.get(f"/v1/contacts/{contact_id}", headers=auth())).json()
    return found


async def test_a_referral_credits_the_inviter_and_points_expire_after_a_quiet_year(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    order = {
        "id": "o-1",
        "type": "order.paid",
        "contact": {"shop_customer_id": "S-1", "phone": "13800000001"},
        "data": {"order_id": "o-1", "total": 120},
    }
    inviter = await post(client, order)
    added = {
        "id": "add-1",
        "type": "contact.added",
        "contact": {"wecom_userid": "wm-friend"},
        "data": {"state": "ref-S-1", "welcome_code": "W"},
    }

    friend = await post(client, added)

    invited = await contact(client, friend)
    assert "被推荐" in invited["tags"]
    assert invited["attributes"]["referred_by"] == "S-1"
    credited = await contact(client, inviter)
    assert credited["attributes"]["points"] == 170  # 120 for the order, 50 for the friend
    assert credited["attributes"]["points_2026"] == 120  # the year's own ledger line
    assert credited["attributes"]["referrals"] == 1
    assert "推荐达人" in credited["tags"]
    runs = (await client.get("/v1/runs", params={"contact_id": friend}, headers=auth())).json()
    (referral,) = [r for r in runs["items"] if r["playbook"] == "referral"]
    trace = (await client.get(f"/v1/runs/{referral['id']}", headers=auth())).json()["trace"]
    (emitted,) = [t for t in trace if t["kind"] == "emit"]
    assert (emitted["type"], emitted["posted"], emitted["to"]) == (
        "referral.succeeded",
        True,
        ["shop_customer_id"],
    )

    await runtime.start()
    clock.advance(days=365, hours=16, minutes=1)  # 03:01 local, a year and a day later
    await runtime.cron.tick()
    await runtime.process_pending()

    expired = await contact(client, inviter)
    assert expired["attributes"]["points"] == 0
    assert "积分已清零" in expired["tags"]


async def test_a_referral_code_naming_nobody_known_credits_a_new_contact_once(
    client: httpx.AsyncClient,
) -> None:
    added = {
        "id": "add-1",
        "type": "contact.added",
        "contact": {"wecom_userid": "wm-friend"},
        "data": {"state": "ref-S-404", "welcome_code": "W"},
    }
    await post(client, added)

    found = await client.get("/v1/contacts", params={"shop_customer_id": "S-404"}, headers=auth())

    assert found.status_code == 200
    assert found.json()["attributes"]["referrals"] == 1
