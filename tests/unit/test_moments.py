"""Moments pieces without a vendor: the half-hour slots, the event keys, the tag mapping read
from policies.yaml, and the engagement event types being canonical."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters import PLAYBOOK_CHANNELS
from adapters.wecom.moments import CorpTags
from smr.models import MomentEngagementKind
from smr.playbooks.loader import load_text
from smr.services.moments import Reaction, engagement_of, event_of, slot_of


@pytest.mark.parametrize(
    ("now", "slot"),
    [
        (datetime(2026, 12, 6, 7, 0, tzinfo=UTC), datetime(2026, 12, 6, 7, 0, tzinfo=UTC)),
        (datetime(2026, 12, 6, 7, 29, 59, tzinfo=UTC), datetime(2026, 12, 6, 7, 0, tzinfo=UTC)),
        (datetime(2026, 12, 6, 7, 30, 1, tzinfo=UTC), datetime(2026, 12, 6, 7, 30, tzinfo=UTC)),
    ],
)
def test_each_half_hour_is_one_slot(now: datetime, slot: datetime) -> None:
    assert slot_of(now) == slot


def test_a_reaction_is_keyed_by_moment_staff_customer_kind_and_time() -> None:
    like = Reaction(MomentEngagementKind.LIKE, "wm-a", 1764900000)

    found = engagement_of("mom-1", "zhangsan", like)
    event = event_of(found, None)

    assert found.key == "moment:mom-1:zhangsan:wm-a:like:1764900000"
    assert (event.id, event.type) == (found.key, "moment.liked")
    assert event.contact.wecom_userid == "wm-a"
    assert event.occurred_at == datetime.fromtimestamp(1764900000, UTC)
    assert event.data == {"moment_id": "mom-1", "staff": "zhangsan", "create_time": 1764900000}


def test_a_key_too_long_for_an_event_id_becomes_a_digest_that_stays_apart() -> None:
    comment = Reaction(MomentEngagementKind.COMMENT, "wm-" + "a" * 120, 1764900000)

    first = engagement_of("mom-" + "x" * 120, "zhangsan", comment)
    second = engagement_of("mom-" + "x" * 120, "lisi", comment)

    assert len(first.key) <= 200
    assert first.key.startswith("moment:")
    assert first.key != second.key


def test_corp_tags_follow_the_file_and_keep_the_last_valid_mapping(tmp_path: Path) -> None:
    tags = CorpTags(tmp_path)
    assert tags() == {}
    policies = tmp_path / "policies.yaml"

    policies.write_text("wecom_tags: {会员: etMEMBER}\n", encoding="utf-8")
    assert tags() == {"会员": "etMEMBER"}
    policies.write_text("wecom_tags: {会员: etMEMBER, 新客: etNEW}\n", encoding="utf-8")
    assert tags() == {"会员": "etMEMBER", "新客": "etNEW"}
    policies.write_text("wecom_tags: [broken\n", encoding="utf-8")

    assert tags() == {"会员": "etMEMBER", "新客": "etNEW"}


@pytest.mark.parametrize("event", ["moment.liked", "moment.commented"])
def test_engagement_events_are_canonical_and_the_moment_channel_is_known(event: str) -> None:
    engaged = f"""
id: thanks
name: thanks
trigger: {{event: {event}}}
steps:
  - tag: {{add: [互动客户]}}
"""
    post = """
id: post
name: post
trigger: {schedule: "30 7 * * *", once: true}
steps:
  - send: {channel: moment, category: service, text: "新品"}
"""
    for text in (engaged, post):
        loaded, problems = load_text(text, filename="p.yaml", channels=PLAYBOOK_CHANNELS)

        assert loaded is not None
        assert problems == []
