"""Plan.claim_due: which planned deliveries are written claimed, and how."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from smr.repositories.rows import NewDelivery
from smr.services.plan import Plan
from smr.statuses import DeliveryStatus, RunStatus, SkipReason

NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
LEASE_END = NOW + timedelta(seconds=60)


def planned(key: str, *, due_at: datetime = NOW, skip: SkipReason | None = None) -> NewDelivery:
    return NewDelivery(
        id=key,
        run_id=f"run-{key}",
        contact_id="ct-1",
        playbook_id="pb",
        playbook_version="v1",
        step="0",
        channel="mock",
        category="service",
        text=f"text {key}",
        template_code=None,
        params={"a": 1},
        attachments=[],
        status=DeliveryStatus.SKIPPED if skip else DeliveryStatus.SCHEDULED,
        skip_reason=skip,
        last_error=None,
        due_at=due_at,
        created_at=NOW,
        updated_at=NOW,
    )


def test_only_deliveries_due_by_now_are_claimed_with_the_lease_and_one_attempt() -> None:
    plan = Plan()
    earlier = planned("earlier", due_at=NOW - timedelta(minutes=5))
    plan.deliveries = [
        planned("now"),
        planned("later", due_at=NOW + timedelta(seconds=1)),
        planned("skipped", skip=SkipReason.TEMPLATE_ERROR),
        earlier,
    ]

    claimed = plan.claim_due(now=NOW, lease_until=LEASE_END)

    assert [r.id for r in claimed] == ["now", "earlier"]
    written = {d.id: (d.status, d.lease_until, d.attempts) for d in plan.deliveries}
    assert written == {
        "now": (DeliveryStatus.SENDING, LEASE_END, 1),
        "later": (DeliveryStatus.SCHEDULED, None, 0),
        "skipped": (DeliveryStatus.SKIPPED, None, 0),
        "earlier": (DeliveryStatus.SENDING, LEASE_END, 1),
    }
    # What a claim returns: every column of the row as written, nothing sent yet.
    assert vars(claimed[1]) == {
        **earlier.claimed(lease_until=LEASE_END).columns(),
        "sent_at": None,
        "vendor_ref": None,
    }


def test_a_plan_with_nothing_due_claims_nothing() -> None:
    plan = Plan()
    plan.deliveries = [planned("later", due_at=NOW + timedelta(hours=8))]

    assert plan.claim_due(now=NOW, lease_until=LEASE_END) == []
    assert plan.deliveries[0].status == DeliveryStatus.SCHEDULED


def test_the_runs_a_plan_starts_are_known_in_the_state_they_are_left_in() -> None:
    from smr.repositories.rows import EndedRun, NewRun
    from smr.services.plan import waiting

    def started(run_id: str) -> NewRun:
        state = waiting(1, NOW + timedelta(days=1), NOW)
        return NewRun(run_id, "ct-1", "pb", "v1", "ev-1", None, NOW, state)

    plan = Plan()
    plan.runs = [started("waits"), started("exits")]
    plan.ended = [
        EndedRun(id="exits", status=RunStatus.EXITED, end_reason="refunded", ended_at=NOW),
        EndedRun(id="known-before", status=RunStatus.EXITED, end_reason="x", ended_at=NOW),
    ]

    assert plan.started_statuses() == {"waits": RunStatus.WAITING, "exits": RunStatus.EXITED}
