"""Send policies at dispatch: quiet hours, frequency caps (skip, defer), opt-out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from smr.channels import RetriableSendError
from smr.db import unit_of_work
from smr.repositories import contacts as contacts_repo
from smr.repositories import deliveries as deliveries_repo
from smr.runtime import Runtime
from tests.helpers import FakeClock, auth, consent_event
from tests.integration.journeys import deliveries, event, post, write_playbooks
from tests.integration.test_dispatch import ScriptedAdapter, route_all


@pytest.fixture
def playbooks_dir(tmp_path: Path) -> Path:
    return write_playbooks(tmp_path / "playbooks")


async def say(client: httpx.AsyncClient, key: str, text: str, phone: str = "13800000000") -> None:
    await post(client, event(key, "chat.message", phone=phone, text=text))


async def outcome(runtime: Runtime, text: str) -> list[tuple[str, str | None]]:
    return [(d.status, d.skip_reason) for d in await deliveries(runtime) if d.text == text]


async def test_quiet_hours_hold_marketing_but_not_service(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    clock.now = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)  # 22:00 local
    await say(client, "m-1", "wecom-marketing")
    await say(client, "m-2", "wecom-service")

    await runtime.tick()

    held = [d for d in await deliveries(runtime) if d.category == "marketing"]
    assert [(d.status, d.due_at) for d in held] == [
        ("scheduled", datetime(2026, 11, 24, 1, 0, tzinfo=UTC))  # 09:00 local
    ]
    assert held[0].attempts == 0
    assert await outcome(runtime, "wecom service") == [("sent", None)]
    clock.now = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
    await runtime.tick()
    assert await outcome(runtime, "wecom marketing") == [("sent", None)]


async def test_cap_skip_counts_across_channels_and_playbooks(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    await post(client, consent_event("c-1"))
    await say(client, "m-1", "wecom-marketing")
    await runtime.tick()
    clock.advance(hours=1)
    await say(client, "m-2", "sms-marketing")
    await say(client, "m-3", "sms-service")
    await say(client, "m-4", "wecom-marketing", phone="13900000000")  # someone else

    await runtime.tick()

    assert await outcome(runtime, "sms marketing") == [("skipped", "frequency_capped")]
    assert await outcome(runtime, "sms service") == [("sent", None)]
    assert await outcome(runtime, "wecom marketing") == [("sent", None), ("sent", None)]


async def test_cap_defer_waits_for_the_window(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock, playbooks_dir: Path
) -> None:
    write_playbooks(playbooks_dir, on_cap="defer")
    runtime.catalog.reload()
    first_sent = clock.now
    await post(client, consent_event("c-1"))
    await say(client, "m-1", "wecom-marketing")
    await runtime.tick()
    clock.advance(hours=2)
    await say(client, "m-2", "sms-marketing")

    await runtime.tick()

    (deferred,) = [d for d in await deliveries(runtime) if d.text == "sms marketing"]
    assert (deferred.status, deferred.due_at) == ("scheduled", first_sent + timedelta(days=1))
    clock.now = first_sent + timedelta(days=1)
    await runtime.tick()
    assert await outcome(runtime, "sms marketing") == [("sent", None)]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, {"wecom marketing": "opted_out", "sms marketing": "opted_out"}),
        ({"channel": "sms"}, {"wecom marketing": None, "sms marketing": "opted_out"}),
    ],
)
async def test_opt_out_stops_marketing_only(
    client: httpx.AsyncClient,
    runtime: Runtime,
    clock: FakeClock,
    data: dict[str, str],
    expected: dict[str, str | None],
) -> None:
    await post(client, event("u-1", "contact.unsubscribed", **data))
    await say(client, "m-1", "wecom-marketing")
    await say(client, "m-2", "sms-service")
    await runtime.tick()
    clock.advance(days=2)  # stay clear of the frequency cap
    await say(client, "m-3", "sms-marketing")

    await runtime.tick()

    for text, reason in expected.items():
        assert await outcome(runtime, text) == [("skipped" if reason else "sent", reason)]
    assert await outcome(runtime, "sms service") == [("sent", None)]


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_a_claim_in_flight_holds_its_contact_so_the_cap_counts_it(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    """Another worker has claimed one of a contact's marketing deliveries and not committed
    yet: a claim meanwhile leaves the contact's other one for later, and then, after that
    commit, caps it by the first."""
    # The first try of each, as its event is processed, fails: scheduled for claims.
    route_all(runtime, ScriptedAdapter(*(RetriableSendError("503") for _ in range(3))))
    await post(client, consent_event("c-1"))
    for key, text, phone in [
        ("m-1", "wecom-marketing", "13800000000"),
        ("m-2", "sms-marketing", "13800000000"),
        ("m-3", "wecom-marketing", "13900000000"),  # someone else
    ]:
        await say(client, key, text, phone=phone)
        # Past the first retry's jittered wait, so the retries come due in this order.
        clock.advance(seconds=runtime.settings.retry_base_seconds + 1)
    clock.advance(seconds=runtime.settings.retry_cap_seconds)
    first = (await deliveries(runtime))[0]

    async with unit_of_work(runtime.sessions) as other_worker:
        lease = timedelta(seconds=60)
        held = await deliveries_repo.claim_due(
            other_worker, now=clock(), lease=lease, limit=1, resendable=[]
        )
        assert [d.id for d in held] == [first.id]
        # … and passed it through the gate, which holds its contact until the claim commits.
        assert await contacts_repo.permissions(other_worker, [first.contact_id], hold=True)
        await runtime.dispatcher.tick()
        assert await outcome(runtime, "sms marketing") == [("scheduled", None)]
    await runtime.dispatcher.tick()

    assert await outcome(runtime, "sms marketing") == [("skipped", "frequency_capped")]
    assert await outcome(runtime, "wecom marketing") == [("sending", None), ("sent", None)]


async def test_marketing_sms_needs_a_recorded_consent_and_service_sms_does_not(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await say(client, "m-1", "sms-marketing")
    await say(client, "m-2", "sms-service")
    await say(client, "m-3", "wecom-marketing", phone="13900000000")  # no consent needed there

    await runtime.tick()

    assert await outcome(runtime, "sms marketing") == [("skipped", "no_consent")]
    assert await outcome(runtime, "sms service") == [("sent", None)]
    assert await outcome(runtime, "wecom marketing") == [("sent", None)]


async def test_a_consent_lets_marketing_sms_go_an_opt_out_withdraws_it_and_a_new_one_lifts_that(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    await post(client, consent_event("c-1"))
    await say(client, "m-1", "sms-marketing")
    await runtime.tick()
    clock.advance(days=1)
    await post(client, event("u-1", "contact.unsubscribed", channel="sms"))
    await say(client, "m-2", "sms-marketing")
    await runtime.tick()
    clock.advance(days=1)
    again = await post(client, consent_event("c-2", source="会员日活动页"))
    await say(client, "m-3", "sms-marketing")

    await runtime.tick()

    assert await outcome(runtime, "sms marketing") == [
        ("sent", None),
        ("skipped", "opted_out"),
        ("sent", None),
    ]
    found = await client.get("/v1/contacts", params={"phone": "13800000000"}, headers=auth())
    contact = found.json()
    assert contact["opted_out"] == []
    assert contact["consents"]["sms"]["event_id"] == again["event_id"]
    assert contact["consents"]["sms"]["source"] == "会员日活动页"


async def test_policies_can_require_consent_on_no_channel(
    client: httpx.AsyncClient, runtime: Runtime, playbooks_dir: Path
) -> None:
    policies = playbooks_dir / "policies.yaml"
    policies.write_text(policies.read_text() + "require_consent: []\n")
    runtime.catalog.reload()

    await say(client, "m-1", "sms-marketing")
    await runtime.tick()

    assert await outcome(runtime, "sms marketing") == [("sent", None)]
