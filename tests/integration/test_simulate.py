"""Simulation: the real pipeline in virtual time, its timeline, and `smr simulate`."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from adapters import PLAYBOOK_CHANNELS
from smr.cli import app
from smr.config import Settings
from smr.playbooks import LoadResult, Policies, load_path
from smr.services.catalog import Catalog
from smr.simulate import Entry, ScenarioInvalid, Simulation, scenario_events, simulate

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "simulate"
TZ = ZoneInfo("Asia/Shanghai")


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def event(kind: str, at: str, **data: Any) -> dict[str, Any]:
    return {"type": kind, "occurred_at": f"{at}:00+08:00", "data": data}


#: Customers as WeCom and the shop know them, reachable on every channel: the simulator skips
#: (missing_identity) what production could not address.
XIAOLI = {
    "wecom_userid": "wm-1",
    "phone": "13900000000",
    "name": "小李",
    "attributes": {"wecom_owner": "zhangsan"},
}
XIAOWANG = {
    "phone": "13800000000",
    "wecom_userid": "wm-2",
    "name": "小王",
    "attributes": {"wecom_owner": "zhangsan"},
}


def added(at: str) -> dict[str, Any]:
    body = event("contact.added", at, welcome_code="WELCOME-CODE")
    return {**body, "contact": XIAOLI}


def order(key: str, at: str, order_id: str, *, quantity: int = 1) -> dict[str, Any]:
    items = [{"sku": "FACE-WASH", "name": "洗面奶", "quantity": quantity, "price": 50}]
    body = event("order.paid", at, order_id=order_id, total=50 * quantity, items=items)
    return {**body, "id": key, "contact": XIAOWANG}


def refund(key: str, at: str, order_id: str) -> dict[str, Any]:
    return {**event("order.refunded", at, order_id=order_id, total=50), "id": key}


async def run(
    playbook: str,
    first: dict[str, Any],
    *later: dict[str, Any],
    days: int = 60,
    policies: Policies | None = None,
) -> Simulation:
    loaded = load_path(FIXTURES / playbook, channels=PLAYBOOK_CHANNELS, policies_dir=FIXTURES)
    assert loaded.errors == []
    if policies is not None:
        loaded = LoadResult(loaded.playbooks, policies, [])
    catalog = Catalog.of(loaded, channels=PLAYBOOK_CHANNELS)
    events = scenario_events(first, list(later), now=local("2026-11-23T00:00"))
    return await simulate(catalog, events, horizon=timedelta(days=days), settings=Settings())


def sends(simulation: Simulation) -> list[tuple[datetime, str, str | None, str | None]]:
    return [
        (e.at.astimezone(TZ), e.status or "", e.text, e.reason)
        for e in simulation.timeline
        if e.kind == "send"
    ]


def of_kind(simulation: Simulation, kind: str) -> list[Entry]:
    return [e for e in simulation.timeline if e.kind == kind]


async def test_sop_steps_happen_at_their_virtual_times() -> None:
    simulation = await run("sop.yaml", added("2026-11-23T11:00"))

    assert sends(simulation) == [
        (local("2026-11-23T11:00"), "sent", "小李，欢迎！", None),
        (local("2026-11-26T11:00"), "sent", "第 3 天小贴士：https://example.com", None),
        (local("2026-11-27T10:00"), "sent", "第 4 天提醒", None),
    ]
    waits = [(e.at.astimezone(TZ), e.text) for e in of_kind(simulation, "wait")]
    assert waits == [
        (local("2026-11-23T11:00"), "until 2026-11-26 11:00"),
        (local("2026-11-26T11:00"), "until 2026-11-27 10:00"),
    ]
    assert [e.status for e in of_kind(simulation, "end")] == ["completed"]


async def test_sends_production_could_not_address_show_as_missing_identity() -> None:
    """A contact added without a welcome code (an admin-configured welcome took it), known by
    WeCom id only: the welcome and the SMS cannot go; the WeCom task can."""
    bare = {**event("contact.added", "2026-11-23T11:00"), "contact": {"wecom_userid": "wm-1"}}
    owned = {**bare, "contact": {**bare["contact"], "attributes": {"wecom_owner": "zhangsan"}}}

    simulation = await run("sop.yaml", owned)

    assert [(e.status, e.reason) for e in of_kind(simulation, "send")] == [
        ("skipped", "missing_identity"),
        ("sent", None),
        ("skipped", "missing_identity"),
    ]
    (welcome, _, sms) = of_kind(simulation, "send")
    assert "welcome_code" in str(welcome.detail)
    assert "phone" in str(sms.detail)


async def test_quiet_hours_hold_a_marketing_send_until_nine() -> None:
    simulation = await run("sop.yaml", added("2026-11-23T22:00"))

    assert sends(simulation) == [
        (local("2026-11-23T22:00"), "sent", "小李，欢迎！", None),  # service: not held
        (local("2026-11-26T22:00"), "deferred", None, "quiet hours until 09:00"),
        (local("2026-11-27T09:00"), "sent", "第 3 天小贴士：https://example.com", None),
        (local("2026-11-27T10:00"), "sent", "第 4 天提醒", None),
    ]


async def test_frequency_cap_with_skip_skips_the_second_message() -> None:
    first = {
        **event("chat.message", "2026-11-23T11:00", text="有优惠吗"),
        "contact": {"id": "c1", **XIAOWANG},
    }
    simulation = await run(
        "promo.yaml", first, event("chat.message", "2026-11-23T15:00", text="优惠")
    )

    (capped,) = [e for e in of_kind(simulation, "send") if e.status == "skipped"]
    assert (capped.at.astimezone(TZ), capped.reason) == (
        local("2026-11-23T15:00"),
        "frequency_capped",
    )
    assert capped.detail == "1 marketing messages in 1d (cap 1)"
    assert [s[:2] for s in sends(simulation)] == [
        (local("2026-11-23T11:00"), "sent"),
        (local("2026-11-23T15:00"), "skipped"),
    ]


async def test_frequency_cap_with_defer_sends_once_the_window_allows() -> None:
    policies = Policies.model_validate(
        {
            "timezone": "Asia/Shanghai",
            "frequency_caps": [{"max": 1, "per": "1d"}],
            "on_cap": "defer",
            "vars": {"shop_url": "https://example.com"},
        }
    )
    first = {
        **event("chat.message", "2026-11-23T11:00", text="优惠"),
        "contact": {"id": "c1", **XIAOWANG},
    }
    later = event("chat.message", "2026-11-23T15:00", text="优惠")
    simulation = await run("promo.yaml", first, later, policies=policies)

    assert [s[:2] for s in sends(simulation)] == [
        (local("2026-11-23T11:00"), "sent"),
        (local("2026-11-23T15:00"), "deferred"),
        (local("2026-11-24T11:00"), "sent"),
    ]


async def test_opt_out_skips_later_marketing() -> None:
    opt_out = event("contact.unsubscribed", "2026-11-24T11:00")
    simulation = await run("sop.yaml", added("2026-11-23T11:00"), opt_out)

    assert [(s[0], s[1], s[3]) for s in sends(simulation)] == [
        (local("2026-11-23T11:00"), "sent", None),
        (local("2026-11-26T11:00"), "skipped", "opted_out"),
        (local("2026-11-27T10:00"), "sent", None),  # service messages still go out
    ]
    assert simulation.contact is not None
    assert simulation.contact["opted_out"] == ["*"]


async def test_refund_exits_the_waiting_run_before_its_reminder() -> None:
    simulation = await run(
        "repurchase.yaml",
        order("o-1", "2026-11-23T11:00", "A1"),
        refund("r-1", "2026-12-03T11:00", "A1"),
    )

    (end,) = of_kind(simulation, "end")
    assert (end.at.astimezone(TZ), end.status) == (local("2026-12-03T11:00"), "exited")
    assert end.reason == "exit_on[0]: event.data.order_id == trigger.data.order_id (event r-1)"
    # The pipeline never creates the reminder of an exited run.
    assert [s[2] for s in sends(simulation)] == ["感谢下单 A1"]


async def test_second_order_restarts_the_wait() -> None:
    simulation = await run(
        "repurchase.yaml",
        order("o-1", "2026-11-23T11:00", "A1"),
        order("o-2", "2026-11-28T11:00", "A2"),
    )

    (restarted, completed) = of_kind(simulation, "end")
    assert (restarted.at.astimezone(TZ), restarted.status) == (local("2026-11-28T11:00"), "exited")
    assert restarted.reason == "restarted by event o-2"
    assert completed.status == "completed"
    assert sends(simulation) == [
        (local("2026-11-23T11:00"), "sent", "感谢下单 A1", None),
        (local("2026-11-28T11:00"), "sent", "感谢下单 A2", None),
        (local("2026-12-23T11:00"), "sent", "小王，洗面奶快用完啦", None),  # day 5 + 25
    ]
    assert simulation.contact is not None
    assert simulation.contact["tags"] == ["洗面奶用户"]
    assert simulation.contact["stats"]["orders"] == 2


async def test_wait_scales_with_quantity_and_condition_false_is_shown() -> None:
    no_face_wash = order("o-2", "2026-11-24T11:00", "B1")
    no_face_wash["data"]["items"] = [{"sku": "TONER", "quantity": 1, "price": 50}]
    simulation = await run(
        "repurchase.yaml", order("o-1", "2026-11-23T11:00", "A1", quantity=2), no_face_wash
    )

    assert sends(simulation)[-1][:2] == (local("2027-01-12T11:00"), "sent")  # 50 days later
    (refused,) = [e for e in of_kind(simulation, "start") if e.status != "started"]
    assert (refused.playbook, refused.status) == ("repurchase", "condition_false")
    assert refused.reason == "'FACE-WASH' in event.skus"


async def test_schedule_fires_every_friday_at_ten_local() -> None:
    simulation = await run("member-friday.yaml", added("2026-11-23T11:00"))

    fridays = [local("2026-11-27T10:00") + timedelta(weeks=n) for n in range(9)]
    assert fridays[-1] < local("2027-01-22T11:00") < fridays[-1] + timedelta(weeks=1)
    assert sends(simulation) == [(at, "sent", "今天是会员日", None) for at in fridays]


async def test_waits_beyond_the_horizon_send_nothing_yet() -> None:
    simulation = await run("repurchase.yaml", order("o-1", "2026-11-23T11:00", "A1"), days=10)

    assert [s[2] for s in sends(simulation)] == ["感谢下单 A1"]
    assert [e.text for e in of_kind(simulation, "wait")] == ["until 2026-12-18 11:00"]
    assert simulation.end == simulation.start + timedelta(days=10)


def test_later_events_may_not_precede_the_first() -> None:
    with pytest.raises(ScenarioInvalid) as caught:
        scenario_events(
            order("o-1", "2026-11-23T11:00", "A1"),
            [refund("r-1", "2026-11-22T11:00", "A1")],
            now=local("2026-11-23T00:00"),
        )

    assert [(p.path, p.message) for p in caught.value.problems] == [
        ("events[0].occurred_at", "must not be before the first event")
    ]


# ---- smr simulate --------------------------------------------------------------------------


def write_scenario(folder: Path) -> tuple[Path, Path]:
    first = folder / "event.json"
    first.write_text(json.dumps(order("o-1", "2026-11-23T11:00", "A1")))
    later = folder / "scenario.jsonl"
    lines = [order("o-2", "2026-11-28T11:00", "A2"), refund("r-2", "2026-12-03T11:00", "A2")]
    later.write_text("# a second order, then its refund\n" + "\n".join(map(json.dumps, lines)))
    return first, later


def rows(output: str) -> list[list[str]]:
    return [line.split() for line in output.splitlines()]


def test_cli_prints_the_timeline_as_a_table(tmp_path: Path) -> None:
    first, later = write_scenario(tmp_path)

    result = CliRunner().invoke(
        app,
        [
            "simulate",
            str(FIXTURES / "repurchase.yaml"),
            "--event",
            str(first),
            "--events",
            str(later),
        ],
    )

    assert result.exit_code == 0, result.output
    table = rows(result.output)
    assert table[0] == ["TIME", "PLAYBOOK", "STEP", "KIND", "CHANNEL", "STATUS", "REASON", "TEXT"]
    assert [
        "2026-11-23",
        "11:00",
        "repurchase",
        "steps[1]",
        "send",
        "wecom",
        "sent",
        "感谢下单",
        "A1",
    ] in table
    assert [
        "2026-11-23",
        "11:00",
        "repurchase",
        "steps[2]",
        "wait",
        "waiting",
        "until",
        "2026-12-18",
        "11:00",
    ] in table
    assert [
        "2026-11-28",
        "11:00",
        "repurchase",
        "end",
        "exited",
        "restarted",
        "by",
        "event",
        "o-2",
    ] in table
    exit_row = next(r for r in table if r[:2] == ["2026-12-03", "11:00"] and "end" in r)
    assert exit_row[3:5] == ["end", "exited"]
    assert "r-2" in exit_row[-1]
    assert not any("洗面奶快用完啦" in line for line in result.output.splitlines())
    # columns line up: every row's STATUS starts where the header's does
    lines = result.output.splitlines()
    column = lines[0].index("STATUS")
    sent = next(line for line in lines if "感谢下单 A1" in line)
    assert sent[column - 2 : column + 4] == "  sent"  # no CJK before this column


def test_cli_takes_inline_json_and_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "playbooks"
    folder.mkdir()
    for name in ("policies.yaml", "member-friday.yaml", "sop.yaml"):
        (folder / name).write_text((FIXTURES / name).read_text())
    inline = json.dumps(added("2026-11-23T11:00"))

    result = CliRunner().invoke(app, ["simulate", str(folder), "--event", inline, "--days", "7"])

    assert result.exit_code == 0, result.output
    sent = [r for r in rows(result.output) if "send" in r]
    assert [(r[0], r[1], r[2], r[6]) for r in sent] == [
        ("2026-11-23", "11:00", "sop", "sent"),
        ("2026-11-26", "11:00", "sop", "sent"),
        # the sop's sms is a service one; 23 hours after the sop's marketing tip, the member
        # day's marketing message is over the cap
        ("2026-11-27", "10:00", "sop", "sent"),
        ("2026-11-27", "10:00", "member-friday", "skipped"),
    ]
    assert "frequency_capped" in sent[3]


def test_cli_bad_playbook_exits_1_with_file_line_col(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "id: bad\nname: bad\ntrigger: {event: order.paid}\n"
        "steps:\n  - send: {channel: fax, text: hi}\n"
    )
    first, _ = write_scenario(tmp_path)

    result = CliRunner().invoke(app, ["simulate", str(bad), "--event", str(first)])

    assert result.exit_code == 1
    assert f"{bad}:5:21: steps[0].send.channel: unknown channel 'fax'" in result.output
    assert "TIME" not in result.output


def test_cli_bad_event_exits_2_with_its_path(tmp_path: Path) -> None:
    first = tmp_path / "event.json"
    first.write_text(json.dumps({"type": "order.paid", "contact": {}, "data": {}}))

    result = CliRunner().invoke(
        app, ["simulate", str(FIXTURES / "repurchase.yaml"), "--event", str(first)]
    )

    assert result.exit_code == 2
    assert "event.contact: Value error, needs at least one of id" in result.output
