"""Crash safety: leases, resends on idempotent channels, `uncertain` elsewhere, restarts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from smr.channels import RetriableSendError
from smr.eventlog import PARTITIONS
from smr.runtime import Runtime, build_runtime
from smr.services.dispatch import Dispatcher
from tests.helpers import FakeClock, auth
from tests.integration.journeys import (
    REPURCHASE,
    deliveries,
    order,
    outbox_texts,
    post,
    process_without_sending,
    runs,
    write_playbooks,
)
from tests.integration.test_dispatch import ScriptedAdapter, route_all


@pytest.fixture
def playbooks_dir(tmp_path: Path) -> Path:
    return write_playbooks(tmp_path / "playbooks")


async def crash_mid_send(runtime: Runtime, event: dict[str, Any]) -> None:
    """Process ``event`` as a worker would, then die before sending what it made due."""
    await process_without_sending(runtime, event)
    (delivery,) = await deliveries(runtime)
    assert (delivery.status, delivery.attempts) == ("sending", 1)


async def test_idempotent_channel_is_resent_once_after_the_lease(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    await crash_mid_send(runtime, order("o-1", "A1"))

    assert await runtime.dispatcher.tick() == 0  # the lease still holds
    clock.advance(seconds=61)
    await runtime.dispatcher.tick()

    (delivery,) = await deliveries(runtime)
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert await outbox_texts(runtime) == ["thanks A1"]


async def test_a_resend_after_the_lease_is_skipped_when_the_run_exited_meanwhile(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    await crash_mid_send(runtime, order("o-1", "A1"))
    await post(client, order("r-1", "A1", refund=True))  # ends the run; its send is in flight
    clock.advance(seconds=61)

    await runtime.dispatcher.tick()

    (delivery,) = await deliveries(runtime)
    assert (delivery.status, delivery.skip_reason) == ("skipped", "exited")
    assert await outbox_texts(runtime) == []
    (run,) = await runs(runtime)
    assert run.status == "exited"


async def test_other_channels_become_uncertain_instead_of_resending(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    vendor = ScriptedAdapter()  # not idempotent
    dispatcher = Dispatcher(
        sessions=runtime.sessions,
        routes={**runtime.routes, "wecom": vendor},
        catalog=runtime.catalog,
        settings=runtime.settings,
        clock=clock,
    )
    await crash_mid_send(runtime, order("o-1", "A1"))
    clock.advance(seconds=61)

    await dispatcher.tick()

    assert vendor.sent == []
    listed = (
        await client.get("/v1/deliveries", params={"status": "uncertain"}, headers=auth())
    ).json()
    assert [d["text"] for d in listed["items"]] == ["thanks A1"]
    run = (await client.get(f"/v1/runs/{listed['items'][0]['run_id']}", headers=auth())).json()
    assert run["trace"][-1]["status"] == "uncertain"


async def test_a_run_whose_processor_died_is_taken_over_after_the_partition_lease(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    from smr.services.partition_owner import PartitionOwner

    await post(client, order("o-1", "A1"))
    await runtime.tick()
    await runtime.processor.owner.leave()
    lease = timedelta(seconds=runtime.settings.ingest.lease_seconds)
    dead = PartitionOwner(runtime.sessions, lease=lease, clock=clock, name="dead")
    assert len(await dead.heartbeat()) == PARTITIONS  # it holds every partition, then dies
    clock.advance(days=25)
    await dead.heartbeat()  # alive when the run falls due

    await runtime.tick()
    assert await outbox_texts(runtime) == ["thanks A1"]  # its partition's lease still holds
    (run,) = await runs(runtime)
    assert run.status == "waiting"
    clock.advance(seconds=runtime.settings.ingest.lease_seconds + 1)
    await runtime.tick()

    assert await outbox_texts(runtime) == ["thanks A1", "time to rebuy"]
    (run,) = await runs(runtime)
    assert run.status == "completed"


async def test_restart_between_wait_and_send_sends_once_with_the_started_version(
    client: httpx.AsyncClient,
    runtime: Runtime,
    clock: FakeClock,
    playbooks_dir: Path,
) -> None:
    await post(client, order("o-1", "A1"))
    await runtime.start()
    await runtime.tick()
    (run,) = await runs(runtime)
    started_version = run.playbook_version
    (playbooks_dir / "repurchase.yaml").write_text(
        (REPURCHASE % {"mode": "restart"}).replace("time to rebuy", "EDITED")
    )

    restarted = build_runtime(runtime.settings, clock=clock)  # a new process on the same rows
    try:
        await restarted.start()
        clock.advance(days=25)
        await restarted.tick()
        await restarted.tick()
    finally:
        await restarted.aclose()

    assert await outbox_texts(runtime) == ["thanks A1", "time to rebuy"]
    (run,) = await runs(runtime)
    assert (run.status, run.playbook_version) == ("completed", started_version)
    assert restarted.catalog.result.playbooks["repurchase"].version != started_version


async def test_cancel_delivery_only_while_scheduled(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    route_all(runtime, ScriptedAdapter(RetriableSendError("503")))
    await post(client, order("o-1", "A1"))  # its first try failed: scheduled for another
    (first,) = await deliveries(runtime)
    assert first.status == "scheduled"

    cancelled = await client.post(f"/v1/deliveries/{first.id}/cancel", headers=auth())
    again = await client.post(f"/v1/deliveries/{first.id}/cancel", headers=auth())
    missing = await client.post("/v1/deliveries/dl_nope/cancel", headers=auth())

    assert cancelled.status_code == 200
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert missing.status_code == 404
    clock.advance(seconds=runtime.settings.retry_cap_seconds)
    assert await runtime.dispatcher.tick() == 0
    run = (await client.get(f"/v1/runs/{first.run_id}", headers=auth())).json()
    assert run["trace"][-1] == {**run["trace"][-1], "status": "cancelled", "by": "admin"}
