"""Hot reload: edits take effect without a restart, a broken edit keeps the last good version,
and runs in flight keep the version they started with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from smr.playbooks import LoadedPlaybook
from smr.runtime import Runtime, build_runtime
from tests.conftest import make_settings
from tests.e2e.processes import eventually
from tests.helpers import FakeClock, auth
from tests.integration.journeys import deliveries, event, post, runs

POLICIES = """\
timezone: Asia/Shanghai
quiet_hours: {from: "21:30", to: "09:00"}
"""

NUDGE = """\
id: nudge
name: 提醒
enabled: %(enabled)s
trigger:
  event: chat.message
  keywords: [提醒]
steps:
  - wait: 1h
  - send: {channel: mock, category: service, text: "%(text)s"}
"""


def write(folder: Path, *, text: str = "version one", enabled: str = "true") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "policies.yaml").write_text(POLICIES)
    (folder / "nudge.yaml").write_text(NUDGE % {"text": text, "enabled": enabled})
    return folder


@pytest.fixture
def playbooks_dir(tmp_path: Path) -> Path:
    return write(tmp_path / "playbooks")


async def reload(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.post("/v1/playbooks/reload", headers=auth())
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def listing(client: httpx.AsyncClient) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get("/v1/playbooks", headers=auth())).json()
    return body


async def test_reload_picks_up_an_edit_and_in_flight_runs_keep_their_version(
    client: httpx.AsyncClient, runtime: Runtime, playbooks_dir: Path, clock: FakeClock
) -> None:
    first = runtime.catalog.result.playbooks["nudge"].version
    await post(client, event("c-1", "chat.message", text="提醒我", phone="13800000001"))

    write(playbooks_dir, text="version two")
    report = await reload(client)
    second = report["playbooks"]["nudge"]
    assert report["changed"] == ["nudge"]
    assert report["added"] == report["removed"] == []
    assert second != first
    await post(client, event("c-2", "chat.message", text="提醒我", phone="13800000002"))

    clock.advance(hours=1)
    await runtime.tick()
    sent = {d.contact_id: d.text for d in await deliveries(runtime)}
    by_contact = {r.contact_id: r for r in await runs(runtime)}
    assert sorted(str(text) for text in sent.values()) == ["version one", "version two"]
    for contact_id, run in by_contact.items():
        expected = first if sent[contact_id] == "version one" else second
        detail = (await client.get(f"/v1/runs/{run.id}", headers=auth())).json()
        assert detail["version"] == expected


async def test_a_broken_edit_keeps_the_last_good_version_running(
    client: httpx.AsyncClient, runtime: Runtime, playbooks_dir: Path
) -> None:
    good = runtime.catalog.result.playbooks["nudge"].version
    (playbooks_dir / "nudge.yaml").write_text(
        (NUDGE % {"text": "x", "enabled": "true"}).replace("channel: mock", "channel: mokc")
    )

    report = await reload(client)
    assert report["kept_last_good"] == ["nudge"]
    assert report["playbooks"] == {"nudge": good}
    (error,) = report["errors"]
    assert error["file"].endswith("nudge.yaml")
    assert error["path"] == "steps[1].send.channel"

    shown = await listing(client)
    assert [(p["id"], p["version"], p["last_good"]) for p in shown["playbooks"]] == [
        ("nudge", good, True)
    ]
    assert [e["path"] for e in shown["errors"]] == ["steps[1].send.channel"]

    result = await post(client, event("c-1", "chat.message", text="提醒我"))
    detail = (await client.get(f"/v1/events/{result['event_id']}", headers=auth())).json()
    assert [e["outcome"] for e in detail["evaluations"]] == ["started"]

    write(playbooks_dir, text="fixed")
    fixed = await reload(client)
    assert fixed["kept_last_good"] == []
    assert fixed["errors"] == []
    assert (await listing(client))["playbooks"][0]["last_good"] is False


async def test_removed_and_disabled_playbooks_start_no_new_runs(
    client: httpx.AsyncClient, runtime: Runtime, playbooks_dir: Path
) -> None:
    write(playbooks_dir, enabled="false")
    assert (await reload(client))["changed"] == ["nudge"]
    await post(client, event("c-1", "chat.message", text="提醒我"))
    assert await runs(runtime) == []

    (playbooks_dir / "nudge.yaml").unlink()
    report = await reload(client)
    assert report["removed"] == ["nudge"]
    assert report["kept_last_good"] == []
    await post(client, event("c-2", "chat.message", text="提醒我"))
    assert await runs(runtime) == []
    assert (await listing(client))["playbooks"] == []


async def test_invalid_policies_keep_the_previous_ones(
    client: httpx.AsyncClient, runtime: Runtime, playbooks_dir: Path
) -> None:
    before = runtime.catalog.policies
    assert before.quiet_hours is not None
    (playbooks_dir / "policies.yaml").write_text("timezone: Mars/Olympus\n")

    report = await reload(client)
    assert [e["path"] for e in report["errors"]] == ["timezone"]
    assert runtime.catalog.policies == before


async def test_reload_needs_an_admin_token(client: httpx.AsyncClient) -> None:
    assert (await client.post("/v1/playbooks/reload")).status_code == 401


async def test_the_service_notices_a_changed_file_by_itself(
    database_url: str, playbooks_dir: Path, tmp_path: Path, clock: FakeClock
) -> None:
    settings = make_settings(
        database_url, playbooks_dir, tmp_path / "data", playbooks_poll_seconds=0.05
    )
    runtime = build_runtime(settings, clock=clock)
    await runtime.start()
    try:
        first = runtime.catalog.result.playbooks["nudge"].version
        write(playbooks_dir, text="edited in an editor")

        async def reloaded() -> LoadedPlaybook | None:
            current = runtime.catalog.result.playbooks["nudge"]
            return current if current.version != first else None

        assert "edited in an editor" in (await eventually(reloaded)).source
    finally:
        await runtime.aclose()
