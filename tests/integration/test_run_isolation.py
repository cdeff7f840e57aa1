"""One bad template or run never holds back another: a render past its bounds is a
``template_error`` for that run alone, and a run whose steps fail is failed alone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from smr.api.app import create_app
from smr.repositories.rows import TraceRow
from smr.runtime import Runtime, build_runtime
from smr.services import plan as plan_module
from smr.services import wakeups
from tests.conftest import make_settings
from tests.helpers import FakeClock, auth
from tests.integration.journeys import POLICIES, deliveries, event, outbox_texts, post, runs

HEALTHY = """\
id: healthy-%(n)s
name: 正常
trigger: {event: chat.message}
steps:
  - wait: 1d
  - send: {channel: mock, category: service, text: "hello %(n)s"}
"""

# A macro handed itself: the load cannot see this recursion, the call-depth bound stops it.
RECURSING = """\
id: recursing
name: 递归
trigger: {event: chat.message}
steps:
  - wait: 1d
  - send:
      channel: mock
      category: service
      text: "{% macro a(f) %}{{ f(f) }}{% endmacro %}{{ a(a) }}"
  - send: {channel: mock, category: service, text: "after the bad one"}
"""

HUGE_CONDITION = """\
id: huge-condition
name: 巨大
trigger:
  event: chat.message
  if: "7 ** event.data.n > 1"
steps:
  - send: {channel: mock, category: service, text: never}
"""


@pytest.fixture
def playbooks_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "playbooks"
    folder.mkdir()
    (folder / "policies.yaml").write_text(POLICIES % {"on_cap": "skip"})
    for n in range(3):
        (folder / f"healthy-{n}.yaml").write_text(HEALTHY % {"n": n})
    (folder / "recursing.yaml").write_text(RECURSING)
    (folder / "huge-condition.yaml").write_text(HUGE_CONDITION)
    return folder


async def test_a_template_past_its_bounds_fails_its_own_send_and_nothing_else(
    client: httpx.AsyncClient, runtime: Runtime, clock: FakeClock
) -> None:
    answer = await post(client, event("m-1", "chat.message", text="hi", n=3_000_000))
    clock.advance(days=1)
    await runtime.tick()

    evaluated = (await client.get(f"/v1/events/{answer['event_id']}", headers=auth())).json()
    outcome = {e["playbook"]: e for e in evaluated["evaluations"]}
    assert outcome["huge-condition"]["outcome"] != "started"
    assert "1024 bits" in str(outcome["huge-condition"]["detail"])
    assert sorted(t or "" for t in await outbox_texts(runtime)) == [
        "after the bad one",
        "hello 0",
        "hello 1",
        "hello 2",
    ]
    recursing = [d for d in await deliveries(runtime) if d.playbook_id == "recursing"]
    (bad,) = [d for d in recursing if d.text is None]
    assert (bad.status, bad.skip_reason) == ("skipped", "template_error")
    assert "calls nest at most" in (bad.last_error or "")
    assert all(r.status == "completed" for r in await runs(runtime))


Hook = Callable[[plan_module.Plan, Any, datetime], None]


async def wake_with(
    hook: Hook,
    *,
    client: httpx.AsyncClient,
    runtime: Runtime,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Post an event, then wake its runs a day later with ``hook`` run after each advance."""
    real = plan_module.advance

    def advance(plan: plan_module.Plan, catalog: Any, playbook: Any, **kw: Any) -> Any:
        state = real(plan, catalog, playbook, **kw)
        hook(plan, playbook, kw["now"])
        return state

    monkeypatch.setattr(wakeups, "advance", advance)
    await post(client, event("m-1", "chat.message", text="hi", n=0))
    await runtime.process_pending()  # its runs start now, a day before they are woken
    clock.advance(days=1)
    await runtime.tick()


def unstorable(now: datetime) -> TraceRow:
    """A trace row no database accepts (run_id is NOT NULL)."""
    return TraceRow(run_id=None, at=now, step=None, kind="x", detail={})  # type: ignore[arg-type]


async def test_a_run_that_fails_while_advancing_fails_alone(
    client: httpx.AsyncClient,
    runtime: Runtime,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def explode(plan: plan_module.Plan, playbook: Any, now: datetime) -> None:
        if playbook.id == "healthy-1":
            raise RuntimeError("boom")

    await wake_with(explode, client=client, runtime=runtime, clock=clock, monkeypatch=monkeypatch)

    by_playbook = {r.playbook_id: r for r in await runs(runtime)}
    assert by_playbook["healthy-1"].status == "failed"
    assert "internal error: RuntimeError: boom" in (by_playbook["healthy-1"].end_reason or "")
    assert {p: r.status for p, r in by_playbook.items() if p != "healthy-1"} == {
        "healthy-0": "completed",
        "healthy-2": "completed",
        "recursing": "completed",
    }
    assert "hello 1" not in await outbox_texts(runtime)
    detail = (await client.get(f"/v1/runs/{by_playbook['healthy-1'].id}", headers=auth())).json()
    assert [t["kind"] for t in detail["trace"]][-2:] == ["error", "end"]


async def test_a_batch_the_database_refuses_is_written_run_by_run(
    client: httpx.AsyncClient,
    runtime: Runtime,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def poison(plan: plan_module.Plan, playbook: Any, now: datetime) -> None:
        if playbook.id == "healthy-2":
            plan.trace.append(unstorable(now))

    await wake_with(poison, client=client, runtime=runtime, clock=clock, monkeypatch=monkeypatch)

    by_playbook = {r.playbook_id: r for r in await runs(runtime)}
    assert by_playbook["healthy-2"].status == "failed"
    assert "could not be stored" in (by_playbook["healthy-2"].end_reason or "")
    assert by_playbook["healthy-0"].status == "completed"
    assert sorted(t or "" for t in await outbox_texts(runtime)) == [
        "after the bad one",
        "hello 0",
        "hello 1",
    ]


async def test_a_run_the_database_refuses_in_a_batch_of_its_own_is_failed_too(
    database_url: str,
    playbooks_dir: Path,
    tmp_path: Path,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = make_settings(database_url, playbooks_dir, tmp_path / "one", batch_size=1)
    runtime = build_runtime(settings, clock=clock)
    transport = httpx.ASGITransport(app=create_app(runtime))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://smr") as client:

            def poison(plan: plan_module.Plan, playbook: Any, now: datetime) -> None:
                if playbook.id == "healthy-0":
                    plan.trace.append(unstorable(now))

            await wake_with(
                poison, client=client, runtime=runtime, clock=clock, monkeypatch=monkeypatch
            )
            statuses = {r.playbook_id: r.status for r in await runs(runtime)}
    finally:
        await runtime.aclose()

    assert statuses["healthy-0"] == "failed"  # not left active, to be claimed again for ever
    assert {p: s for p, s in statuses.items() if p != "healthy-0"} == {
        "healthy-1": "completed",
        "healthy-2": "completed",
        "recursing": "completed",
    }
