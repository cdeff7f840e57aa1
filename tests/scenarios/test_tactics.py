"""Every bundled tactic, run by the simulator over the whole bundled library in virtual time
(those whose cases an ops person can write are in ``playbooks/tests/``, run by
``test_playbook_tests.py``).

Each scenario states what an ops person expects to see in the timeline; a tactic that
misbehaves (wrong day, wrong text, a send that should have been held or skipped) fails here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from adapters import PLAYBOOK_CHANNELS
from smr.config import Settings
from smr.playbooks.group_welcome import compile_welcome
from smr.services.catalog import Catalog
from smr.simulate import Entry, Simulation, scenario_events, simulate
from tests.conftest import BUNDLED

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: A customer as WeCom and the shop know her: a phone, her WeCom id and her owner staff, so
#: every channel can reach her (the simulator skips sends production could not address).
ALICE: dict[str, Any] = {
    "phone": "13800000000",
    "name": "小美",
    "wecom_userid": "wmAlice",
    "attributes": {"wecom_owner": "zhangsan"},
}


def at(text: str) -> datetime:
    """A local (Shanghai) time written as 'YYYY-MM-DD HH:MM'."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def event(kind: str, when: str, *, contact: dict[str, Any] | None = None, **data: Any) -> Any:
    body: dict[str, Any] = {"type": kind, "occurred_at": at(when).isoformat(), "data": data}
    if contact is not None:
        body["contact"] = contact
    return body


def added_at(when: str, **data: Any) -> Any:
    """ALICE adds a staff member; WeCom's callback carries the welcome code (valid 20 s)."""
    return event("contact.added", when, contact=ALICE, welcome_code="WELCOME-CODE", **data)


def order(
    when: str, *, total: float, sku: str = "FACE-WASH", quantity: int = 1, **more: Any
) -> Any:
    items = [{"sku": sku, "name": "洗面奶" if sku == "FACE-WASH" else sku, "quantity": quantity}]
    data = {"order_id": more.pop("order_id", f"o-{when}"), "total": total, "items": items}
    return event("order.paid", when, contact=more.pop("contact", ALICE), **data, **more)


async def run(first: Any, *later: Any, days: int = 60) -> Simulation:
    catalog = Catalog(BUNDLED, PLAYBOOK_CHANNELS)
    catalog.reload()
    assert catalog.errors == []
    events = scenario_events(first, list(later), now=at("2026-11-23 10:00"))
    return await simulate(catalog, events, horizon=timedelta(days=days), settings=Settings())


def sends(simulation: Simulation, playbook: str) -> list[tuple[str, str | None, str | None]]:
    """(local time, status, text) of each message the playbook produced."""
    return [
        (e.at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M"), _outcome(e), e.text)
        for e in simulation.timeline
        if e.playbook == playbook and e.kind in ("send", "notify")
    ]


def _outcome(entry: Entry) -> str | None:
    return f"{entry.status}:{entry.reason}" if entry.reason else entry.status


def tags(simulation: Simulation) -> list[str]:
    assert simulation.contact is not None
    return list(simulation.contact["tags"])


def times(rows: list[tuple[str, str | None, str | None]]) -> list[tuple[str, str | None]]:
    return [(when, status) for when, status, _ in rows]


async def test_welcome_tags_the_channel_code_and_runs_the_seven_day_sop() -> None:
    added = added_at("2026-11-23 14:00", state="theatre-lobby")
    sim = await run(added, days=10)
    rows = sends(sim, "welcome-new-contact")
    assert times(rows) == [
        ("2026-11-23 14:00", "sent"),
        ("2026-11-24 10:00", "sent"),
        ("2026-11-26 10:00", "sent"),
        ("2026-11-30 10:00", "sent"),
    ]
    # The welcome carries the newcomer mini-program card (page and title from vars).
    assert rows[0][2] == (
        "小美您好，欢迎来到某某旗舰店！有任何问题随时找我。"
        " [miniprogram 新人礼包：领 20 元无门槛券]"
    )
    assert "新人券" in str(rows[3][2])
    assert {"新客", "渠道-theatre-lobby"} <= set(tags(sim))


async def test_welcome_sop_ends_when_the_customer_leaves_and_skips_the_coupon_for_buyers() -> None:
    sim = await run(
        added_at("2026-11-23 14:00"),
        order("2026-11-25 12:00", total=99, sku="OTHER"),
        days=10,
    )
    assert times(sends(sim, "welcome-new-contact"))[-1] == ("2026-11-26 10:00", "sent")

    gone = await run(
        added_at("2026-11-23 14:00"),
        event("contact.deleted", "2026-11-25 08:00", by="customer"),
        days=10,
    )
    assert times(sends(gone, "welcome-new-contact")) == [
        ("2026-11-23 14:00", "sent"),
        ("2026-11-24 10:00", "sent"),
    ]
    ended = [e for e in gone.timeline if e.playbook == "welcome-new-contact" and e.kind == "end"]
    assert len(ended) == 1


async def test_a_welcome_without_a_greeting_sends_no_card() -> None:
    sim = await run(
        added_at(
            "2026-11-23 14:00", channel_code={"name": "柜台", "kind": "person", "welcome": False}
        ),
        days=1,
    )
    assert [text for _, _, text in sends(sim, "welcome-new-contact")] == [
        "早上好～新人专享：回复「价格」看本周优惠，回复「进群」加入福利群。"
    ]


def test_group_welcome_is_a_wecom_template_with_the_rules() -> None:
    catalog = Catalog(BUNDLED, PLAYBOOK_CHANNELS)
    catalog.reload()
    spec = catalog.result.playbooks["group-welcome"].spec.group_welcome
    assert spec is not None
    assert spec.notify
    made = compile_welcome(spec).render(catalog.vars)
    assert made.text is not None
    assert made.text.startswith("欢迎 %NICKNAME% 入群")
    assert "群规：1. 禁止广告" in made.text


async def test_group_join_tags_and_asks_the_owner_after_a_day_without_an_order() -> None:
    joined = event("group.joined", "2026-11-23 15:00", contact=ALICE, chat_id="wr-1")
    sim = await run(joined, days=2)
    # WeCom's group welcome template greets the joiner: no mass-send task per joiner.
    ((when, status, text),) = sends(sim, "group-welcome")
    assert (when, status) == ("2026-11-24 15:00", "sent")
    assert "小美 入群满一天还未下单" in str(text)
    assert "in-group" in tags(sim)


async def test_rfm_segments_move_as_the_customer_sleeps() -> None:
    fresh = await run(order("2026-11-23 10:00", total=1500, sku="OTHER"), days=3)
    assert [t for t in tags(fresh) if t.startswith("RFM-")] == ["RFM-重要发展"]

    sleeping = await run(order("2026-11-23 10:00", total=1500, sku="OTHER"), days=45)
    assert [t for t in tags(sleeping) if t.startswith("RFM-")] == ["RFM-重要保持"]
    assert sleeping.contact is not None
    assert sleeping.contact["attributes"]["rfm_r"] == "L"


async def test_member_day_every_friday_for_tiered_members() -> None:
    sim = await run(order("2026-10-20 20:00", total=500, sku="OTHER"), days=38)
    assert times(sends(sim, "member-day")) == [
        ("2026-11-06 10:00", "sent"),
        ("2026-11-13 10:00", "sent"),
        ("2026-11-20 10:00", "sent"),
        ("2026-11-27 10:00", "sent"),
    ]


async def test_sensitive_words_alert_staff_and_ordinary_chat_does_not() -> None:
    sim = await run(
        event("chat.message", "2026-11-23 10:00", contact=ALICE, text="再不发货我就去 12315 投诉"),
        event("chat.message", "2026-11-23 11:00", text="谢谢"),
        days=1,
    )
    rows = sends(sim, "sensitive-word-alert")
    assert len(rows) == 1
    assert "提到「投诉、12315」：再不发货我就去 12315 投诉" in str(rows[0][2])


async def test_check_in_adds_points_once_a_day() -> None:
    sim = await run(
        event("chat.message", "2026-11-23 10:00", contact=ALICE, text="签到"),
        event("chat.message", "2026-11-23 18:00", text="签到"),
        event("chat.message", "2026-11-24 09:30", text="签到"),
        days=2,
    )
    texts = [text for _, _, text in sends(sim, "check-in")]
    assert texts == [
        "签到成功 +10！当前积分 10，满 100 可兑换小样。",
        "今天已经签到过啦，当前积分 10，明天再来～",
        "签到成功 +10！当前积分 20，满 100 可兑换小样。",
    ]


async def test_launch_preheat_counts_down_and_pushes_on_the_day() -> None:
    sim = await run(order("2026-11-20 10:00", total=99, sku="OTHER"), days=25)
    rows = sends(sim, "launch-preheat")
    assert times(rows) == [
        ("2026-12-09 12:00", "sent"),
        ("2026-12-11 12:00", "sent"),
        ("2026-12-12 12:00", "sent"),
    ]
    assert [str(text).split("⏰")[0].split("🎉")[0] for _, _, text in rows] == [
        "双十二新品倒计时 3 天",
        "双十二新品倒计时 1 天",
        "双十二新品今天正式开售",
    ]


async def test_order_thanks_is_a_service_message_even_at_night() -> None:
    sim = await run(order("2026-11-23 23:30", total=99, sku="OTHER"), days=1)
    rows = sends(sim, "order-thank-you")
    assert times(rows) == [("2026-11-23 23:30", "sent")]
    assert "已购" in tags(sim)


async def test_member_day_steps_aside_in_launch_week_so_the_launch_fits_the_caps() -> None:
    # Tiered 奥粉 on 1 December by November's spend: a member for member day and a buyer for the
    # launch. The launch (Saturday 12-12) week's Friday member day would use up the daily cap.
    sim = await run(order("2026-11-05 10:00", total=500, sku="OTHER"), days=39)
    assert times(sends(sim, "member-day")) == [("2026-12-04 10:00", "sent")]
    assert times(sends(sim, "launch-preheat")) == [
        ("2026-12-09 12:00", "sent"),
        ("2026-12-11 12:00", "sent"),
        ("2026-12-12 12:00", "sent"),
    ]


def liked(when: str, moment: str = "mom-1", *, kind: str = "moment.liked") -> Any:
    return event(kind, when, moment_id=moment, staff="zhangsan")


async def test_three_moments_interactions_within_thirty_days_make_an_active_fan() -> None:
    sim = await run(
        event("moment.liked", "2026-11-23 12:00", contact=ALICE, moment_id="mom-1"),
        liked("2026-11-23 12:05", kind="moment.commented"),
        liked("2026-12-22 20:00", "mom-2"),
        days=30,
    )
    assert "活跃粉丝" in tags(sim)
    assert sim.contact is not None
    attributes = sim.contact["attributes"]
    assert attributes["moment_hits"] == 3
    assert attributes["moment_since"] == at("2026-11-23 12:00").toordinal()


async def test_two_interactions_then_a_third_after_the_window_are_not_yet_an_active_fan() -> None:
    sim = await run(
        event("moment.liked", "2026-11-23 12:00", contact=ALICE, moment_id="mom-1"),
        liked("2026-11-30 12:00", kind="moment.commented"),
        liked("2026-12-24 12:00", "mom-2"),  # 31 days after the window opened: a new window
        days=32,
    )
    assert "活跃粉丝" not in tags(sim)
    assert sim.contact is not None
    attributes = sim.contact["attributes"]
    assert attributes["moment_hits"] == 1
    assert attributes["moment_since"] == at("2026-12-24 12:00").toordinal()

    two = await run(
        event("moment.liked", "2026-11-23 12:00", contact=ALICE, moment_id="mom-1"),
        liked("2026-11-24 12:00", kind="moment.commented"),
        days=2,
    )
    assert "活跃粉丝" not in tags(two)


async def test_group_check_in_posts_into_a_sample_group_at_nine() -> None:
    """The simulator has no groups of its own: a groups schedule runs for one sample group
    made to match its target (here, tagged 打卡群)."""
    sim = await run(event("chat.message", "2026-11-23 07:00", contact=ALICE, text="你好"), days=2)
    rows = sends(sim, "group-check-in")
    assert times(rows) == [("2026-11-23 09:00", "sent"), ("2026-11-24 09:00", "sent")]
    assert all(str(text).endswith("[miniprogram 今日打卡 +10 积分]") for _, _, text in rows)


async def test_moments_calendar_posts_once_for_the_corp_at_each_golden_hour() -> None:
    sim = await run(event("chat.message", "2026-11-23 07:00", contact=ALICE, text="你好"), days=1)
    rows = sends(sim, "moments-calendar")
    assert times(rows) == [
        ("2026-11-23 07:30", "sent"),
        ("2026-11-23 11:30", "sent"),
        ("2026-11-23 17:30", "sent"),
        ("2026-11-23 20:30", "sent"),
    ]
    assert [str(text).split(" 本周主推")[0] for _, _, text in rows] == [
        "早安☀️ 洗脸这一步做对了，一整天都清爽。",
        "午间种草🌿 温和不紧绷，敏感肌也能天天用。",
        "下班路上看看老客怎么说：「用了一个月，毛孔干净多了」",
        "晚间福利🎁 今晚 22:30 前下单，会员再享 9 折。",
    ]
    # Moments take no mini-program card: the product's web page, as a link with its cover.
    assert all(
        str(text).endswith("本周主推：氨基酸洗面奶，到手价 ¥99 [link 氨基酸洗面奶]")
        for _, _, text in rows
    )
    # The corp's runs, one per slot, not the customer's.
    posts = [e for e in sim.timeline if e.playbook == "moments-calendar" and e.kind == "start"]
    assert len(posts) == 4


async def test_each_cycle_sku_of_one_order_is_reminded_when_it_runs_out() -> None:
    items = [
        {"sku": "FACE-WASH", "name": "洗面奶", "quantity": 1},
        {"sku": "TONER", "name": "爽肤水", "quantity": 2},
        {"sku": "OTHER", "name": "赠品", "quantity": 1},
    ]
    both = event(
        "order.paid", "2026-11-23 10:00", contact=ALICE, order_id="o-1", total=300, items=items
    )
    # The toner is bought again while one bottle's month is still left.
    toner = order("2026-12-23 10:00", total=100, sku="TONER", order_id="o-2")

    sim = await run(both, toner, days=100)

    rows = sends(sim, "repurchase-reminder")
    assert times(rows) == [("2026-12-18 10:00", "sent"), ("2027-02-21 10:00", "sent")]
    assert "洗面奶差不多用完啦" in str(rows[0][2])
    assert "TONER差不多用完啦" in str(rows[1][2])  # the name on the latest order line


async def test_points_are_a_ledger_of_attributes_with_a_line_per_year() -> None:
    sim = await run(
        order("2026-11-23 10:00", total=199, sku="OTHER"),
        order("2026-12-30 10:00", total=50, sku="OTHER"),
        order("2027-01-02 10:00", total=20, sku="OTHER"),
        days=45,
    )
    assert sim.contact is not None
    attributes = sim.contact["attributes"]
    assert attributes["points"] == 269
    assert (attributes["points_2026"], attributes["points_2027"]) == (249, 20)
    assert attributes["points_earned_on"] == "2027-01-02"


async def test_a_friend_from_a_referral_code_is_tagged_and_the_inviter_credited() -> None:
    friend = {"wecom_userid": "wmFriend", "attributes": {"wecom_owner": "zhangsan"}}
    sim = await run(
        event("contact.added", "2026-11-23 10:00", contact=friend, state="ref-S10086"),
        days=2,
    )
    assert "被推荐" in tags(sim)
    assert sim.contact is not None
    assert sim.contact["attributes"]["referred_by"] == "S10086"
    (emitted,) = [e for e in sim.timeline if e.playbook == "referral" and e.kind == "emit"]
    assert emitted.status == "posted"
