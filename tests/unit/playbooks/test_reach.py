"""`check` warns about sends production could not make as written, from what each channel
declares: addresses only some triggers carry, groups and the corp as subjects, Moments posts
per customer, texts that split a mass-send into one task per customer."""

from __future__ import annotations

import pytest

from adapters import PLAYBOOK_CHANNELS
from smr.channels import Capabilities, Target
from smr.playbooks import load_text

CHANNELS = {**PLAYBOOK_CHANNELS, "post": Capabilities(confirmed_by_staff=True, target=Target.CORP)}


def warnings_of(text: str) -> list[tuple[int, int, str, str]]:
    loaded, found = load_text(text, filename="p.yaml", channels=CHANNELS)
    assert loaded is not None, found
    assert {w.severity for w in found} <= {"warning"}
    return [(w.line, w.column, w.path, w.message) for w in found]


def playbook(trigger: str, *steps: str) -> str:
    body = "".join(f"  - {step}\n" for step in steps)
    return f"id: p\nname: p\ntrigger: {trigger}\nsteps:\n{body}"


def test_a_welcome_outside_contact_added_is_never_sent() -> None:
    text = playbook("{event: order.paid}", "send: {channel: wecom_welcome, text: hi}")
    assert warnings_of(text) == [
        (
            5,
            21,
            "steps[0].send.channel",
            "channel 'wecom_welcome' needs the welcome_code that only contact.added events "
            "carry, and this playbook starts on 'order.paid': every send here would be skipped "
            "(missing_identity)",
        )
    ]


@pytest.mark.parametrize(
    ("trigger", "channel"),
    [
        ("{event: contact.added}", "wecom_welcome"),
        ("{event: group.left}", "wecom_group"),
        ("{event: chat.message}", "wecom_kf"),
        ("{event: order.paid}", "wecom_kf"),  # the kf account is used when present, not needed
        ("{event: order.paid}", "sms"),  # a phone comes with the contact: simulate shows it
        ("{schedule: '0 9 * * *', groups: {owner: zhangsan}}", "wecom_group"),
        ("{schedule: '0 9 * * *', once: true}", "post"),
        ("{schedule: '0 9 * * *', groups: {}}", "mock"),
    ],
)
def test_channels_their_runs_can_address_pass_quietly(trigger: str, channel: str) -> None:
    assert warnings_of(playbook(trigger, f"send: {{channel: {channel}, text: hi}}")) == []


def test_a_group_post_from_a_schedule_without_groups_has_no_group() -> None:
    text = playbook("{schedule: '0 9 * * *'}", "send: {channel: wecom_group, text: hi}")
    [(_, _, path, message)] = warnings_of(text)
    assert path == "steps[0].send.channel"
    assert "only group.joined / group.left events carry" in message
    assert "runs on a schedule" in message


def test_groups_and_the_corp_have_no_phone_nor_customer_id() -> None:
    text = playbook(
        "{schedule: '0 9 * * *', groups: {name_contains: 会员}}",
        "send: {channel: sms, template: SMS_1}",
        "send: {channel: wecom, text: hi}",
        "tag: {add: [x]}",
    )
    assert [(path, message.split(",")[0]) for _, _, path, message in warnings_of(text)] == [
        ("steps[0].send.channel", "channel 'sms' needs phone"),
        ("steps[1].send.channel", "channel 'wecom' needs wecom_userid"),
        (
            "steps[2].tag",
            "tag changes a customer; this playbook runs for each group of its groups target. "
            "A group's tags are set with POST /v1/groups/{chat_id}/tags",
        ),
    ]


def test_a_corp_post_per_customer_is_one_post_per_run() -> None:
    text = playbook("{event: order.paid}", "send: {channel: post, text: 新品}")
    [(_, _, path, message)] = warnings_of(text)
    assert path == "steps[0].send.channel"
    assert "posts for the corp, and this playbook runs per customer" in message
    assert "once: true" in message


def test_a_personal_text_splits_a_scheduled_mass_send_into_tasks() -> None:
    personal = playbook(
        "{schedule: '0 9 * * 5'}", 'send: {channel: wecom, text: "{{ contact.name }}，会员日"}'
    )
    shared = playbook(
        "{schedule: '0 9 * * 5'}",
        'send: {channel: wecom, text: "会员日 {{ vars.x | default(1) }} {{ now.day }}"}',
    )
    on_event = playbook(
        "{event: order.paid}", 'send: {channel: wecom, text: "{{ contact.name }}，谢谢"}'
    )

    [(_, _, path, message)] = warnings_of(personal)
    assert path == "steps[0].send.text"
    assert message.startswith("the text reads contact, so it differs per customer")
    assert warnings_of(shared) == []
    assert warnings_of(on_event) == []  # runs go one by one anyway


def test_a_schedule_reaches_one_kind_of_subject() -> None:
    text = playbook("{schedule: '0 9 * * *', groups: {}, once: true}", "stop:")
    loaded, errors = load_text(text, filename="p.yaml", channels=CHANNELS)
    assert loaded is None
    assert [(e.line, e.path, e.message) for e in errors] == [
        (
            3,
            "trigger",
            "a schedule reaches contacts (audience), groups or the corp (once: true), not "
            "several: groups, once",
        )
    ]


def test_a_trigger_may_name_several_events_and_each_must_carry_what_sends_need() -> None:
    both = playbook("{event: [group.joined, group.left]}", "send: {channel: wecom_group, text: hi}")
    mixed = playbook("{event: [group.joined, order.paid]}", "send: {channel: wecom_group, text: x}")

    assert warnings_of(both) == []
    [(_, _, _, message)] = warnings_of(mixed)
    assert message == (
        "channel 'wecom_group' needs the chat_id that only group.joined / group.left events "
        "carry, and a run started by 'order.paid' does not have it: its sends would be skipped "
        "(missing_identity)"
    )


def test_attachments_on_a_text_only_channel_would_not_go() -> None:
    card = "attachments: [{link: {title: 新品, url: 'https://example.com'}}]"
    text = playbook("{event: order.paid}", f"send: {{channel: sms, template: SMS_1, {card}}}")
    [(_, _, path, message)] = warnings_of(text)
    assert path == "steps[0].send.attachments"
    assert message == "channel 'sms' takes no attachments: link would not go"


def test_a_mini_program_card_on_moments_would_not_go() -> None:
    card = "{miniprogram: {appid: wx8bd80126147dfAAA, page: /p, title: t, cover: c.png}}"
    text = playbook(
        "{schedule: '30 7 * * *', once: true}", f"send: {{channel: moment, attachments: [{card}]}}"
    )
    [(_, _, path, message)] = warnings_of(text)
    assert path == "steps[0].send.attachments"
    assert message == "channel 'moment' takes image, link, video: miniprogram would not go"
