"""GET /v1/group-welcome-templates: each playbook's group welcome template and how it stands in
WeCom; a reload makes WeCom's template in the background."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from smr.runtime import Runtime, build_runtime
from tests.adapters import wecom_fake as fake
from tests.conftest import CORE, make_settings
from tests.helpers import FakeClock, auth

PLAYBOOK = """\
id: group-join-sop
name: 入群 SOP
trigger: {event: group.joined}
group_welcome:
  text: "欢迎 %NICKNAME% 加入{{ vars.shop_name }}会员群！"
steps:
  - tag: {add: [in-group]}
"""
API = "externalcontact/group_welcome_template"


@pytest.fixture
def playbooks_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "playbooks"
    folder.mkdir()
    shutil.copy(CORE / "policies.yaml", folder / "policies.yaml")
    (folder / "gw.yaml").write_text(PLAYBOOK, encoding="utf-8")
    return folder


@pytest.fixture
async def wecom_runtime(
    database_url: str, playbooks_dir: Path, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Runtime]:
    wecom = fake.settings(secret=None, contact_secret=fake.SECRET)
    settings = make_settings(database_url, playbooks_dir, tmp_path / "data", wecom=wecom)
    rt = build_runtime(settings, clock=clock)
    yield rt
    await rt.aclose()


async def listed(runtime: Runtime) -> dict[str, Any]:
    from smr.api.app import create_app

    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://smr.test") as client:
        response = await client.get("/v1/group-welcome-templates", headers=auth())
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_a_declared_template_is_pending_without_wecom(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/group-welcome-templates", headers=auth())

    assert response.status_code == 200, response.text
    assert response.json() == {
        "wecom": False,
        "templates": [
            {
                "playbook_id": "group-join-sop",
                "declared": True,
                "file": response.json()["templates"][0]["file"],
                "notify": True,
                "status": "pending",
                "template_id": None,
                "last_error": None,
                "attempts": 0,
                "retry_at": None,
                "synced_at": None,
            }
        ],
    }
    assert response.json()["templates"][0]["file"].endswith("gw.yaml")


async def test_a_reload_makes_the_template_in_wecom_and_the_list_shows_it(
    wecom_runtime: Runtime, respx_mock: respx.MockRouter, clock: FakeClock
) -> None:
    fake.token_route(respx_mock)
    add = fake.api(respx_mock, f"{API}/add").mock(return_value=fake.ok(template_id="msgT1"))

    await wecom_runtime.reload_playbooks()
    assert wecom_runtime.group_welcome is not None
    await wecom_runtime.group_welcome.settle()

    assert fake.body(add.calls[0]) == {
        "notify": 1,
        "text": {"content": "欢迎 %NICKNAME% 加入某某旗舰店会员群！"},
    }
    answer = await listed(wecom_runtime)
    assert answer["wecom"] is True
    (template,) = answer["templates"]
    assert {k: template[k] for k in ("status", "template_id", "last_error", "synced_at")} == {
        "status": "active",
        "template_id": "msgT1",
        "last_error": None,
        "synced_at": clock.now.isoformat(),
    }


async def test_a_refusal_shows_as_failed_with_wecoms_answer(
    wecom_runtime: Runtime, respx_mock: respx.MockRouter
) -> None:
    fake.token_route(respx_mock)
    fake.api(respx_mock, f"{API}/add").mock(return_value=fake.err(41063, "no permission"))
    assert wecom_runtime.group_welcome is not None

    await wecom_runtime.group_welcome.sync()

    (template,) = (await listed(wecom_runtime))["templates"]
    assert (template["status"], template["template_id"], template["attempts"]) == (
        "failed",
        None,
        1,
    )
    assert "41063" in template["last_error"]
    assert template["retry_at"] is not None


async def test_the_list_needs_an_admin_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/group-welcome-templates")

    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
