"""A playbook's ``group_welcome``: what the loader accepts and refuses (at file:line:col), what
it renders, and the check's warning about a mass-send task per group joiner."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from adapters import PLAYBOOK_CHANNELS
from smr.content import Media, MiniProgram
from smr.playbooks import load_directory, load_text
from smr.playbooks.expressions import TemplateRuntimeError
from smr.playbooks.group_welcome import WelcomeContent, compile_welcome

MEDIA = Path(__file__).resolve().parents[2] / "fixtures" / "media"
HEAD = """\
id: group-join-sop
name: 入群 SOP
trigger: {event: group.joined}
"""
STEPS = """\
steps:
  - tag: {add: [in-group]}
"""
CARD = (
    "    - miniprogram: {appid: wx8bd80126147dfAAA, page: /pages/index, title: 会员中心,"
    " cover: media/poster.png}\n"
)


def load(welcome: str, *, steps: str = STEPS, base_dir: Path | None = None) -> list[str]:
    text = HEAD + "group_welcome:\n" + welcome + steps
    _, errors = load_text(text, filename="gw.yaml", channels=PLAYBOOK_CHANNELS, base_dir=base_dir)
    return [error.format() for error in errors]


def test_text_with_vars_nickname_and_one_card_loads_and_renders_once() -> None:
    welcome = '  text: "欢迎 %NICKNAME% 加入{{ vars.shop_name }}！"\n  attachments:\n' + CARD
    text = HEAD + "group_welcome:\n" + welcome + STEPS
    loaded, errors = load_text(
        text, filename="gw.yaml", channels=PLAYBOOK_CHANNELS, base_dir=MEDIA.parent
    )

    assert errors == []
    assert loaded is not None
    assert loaded.spec.group_welcome is not None
    made = compile_welcome(loaded.spec.group_welcome).render({"shop_name": "某某店"})
    assert made == WelcomeContent(
        text="欢迎 %NICKNAME% 加入某某店！",
        attachment=MiniProgram(
            appid="wx8bd80126147dfAAA",
            page="/pages/index",
            title="会员中心",
            cover=Media(path="media/poster.png"),
        ),
        notify=True,
    )


@pytest.mark.parametrize("name", ["contact.name", "event.data.chat_id", "trigger.type", "now"])
def test_a_text_reading_more_than_vars_is_an_error_at_the_text(name: str) -> None:
    errors = load(f'  text: "欢迎 {{{{ {name} }}}}"\n')

    first = name.split(".")[0]
    assert errors == [
        f"gw.yaml:5:9: group_welcome.text: the text reads {first}, but a group welcome is "
        "written once for every joiner: use vars only, and %NICKNAME% for the joiner's nickname"
    ]


def test_an_attachment_reading_the_contact_is_an_error() -> None:
    link = '    - link: {title: "{{ contact.name }}", url: "https://shop.example.com/"}\n'
    errors = load('  text: "欢迎"\n  attachments:\n' + link)

    assert len(errors) == 1
    assert errors[0].startswith(
        "gw.yaml:7:5: group_welcome.attachments: the attachment reads contact"
    )


def test_two_attachments_are_an_error() -> None:
    image = "    - image: https://cdn.example.com/a.png\n"
    errors = load('  text: "欢迎"\n  attachments:\n' + image + image)

    assert errors == [
        "gw.yaml:7:5: group_welcome.attachments: 2 attachments; WeCom sends a group welcome's "
        "text and ONE other item"
    ]


def test_a_missing_media_file_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "media").mkdir()
    errors = load(
        '  text: "欢迎"\n  attachments:\n    - image: media/missing.png\n', base_dir=tmp_path
    )

    assert errors == [
        f"gw.yaml:7:14: group_welcome.attachments[0].image: no file 'media/missing.png' in the "
        f"playbooks folder ({tmp_path})"
    ]


def test_the_folder_loader_checks_media_files_against_the_folder(tmp_path: Path) -> None:
    shutil.copytree(MEDIA, tmp_path / "media")
    (tmp_path / "ok.yaml").write_text(
        HEAD + "group_welcome:\n  attachments:\n    - image: media/poster.png\n" + STEPS,
        encoding="utf-8",
    )
    bad = HEAD.replace("group-join-sop", "bad") + "group_welcome:\n  attachments:\n"
    (tmp_path / "bad.yaml").write_text(bad + "    - video: media/gone.mp4\n" + STEPS)

    result = load_directory(tmp_path, channels=PLAYBOOK_CHANNELS)

    assert sorted(result.playbooks) == ["group-join-sop"]
    assert [(e.file, e.line, e.path) for e in result.errors] == [
        (str(tmp_path / "bad.yaml"), 6, "group_welcome.attachments[0].video")
    ]


def test_a_text_over_3000_bytes_and_an_empty_welcome_are_errors() -> None:
    assert load(f'  text: "{"欢" * 1001}"\n') == [
        "gw.yaml:5:9: group_welcome.text: the text is 3003 bytes; WeCom takes at most 3000"
    ]
    assert load("  notify: false\n") == [
        "gw.yaml:5:3: group_welcome: a group welcome needs 'text' or an attachment"
    ]


def test_rendering_with_an_unknown_var_or_too_long_a_value_fails() -> None:
    loaded, _ = load_text(
        HEAD + 'group_welcome: {text: "{{ vars.rules }}"}\n' + STEPS,
        filename="gw.yaml",
        channels=PLAYBOOK_CHANNELS,
    )
    assert loaded is not None
    assert loaded.spec.group_welcome is not None
    compiled = compile_welcome(loaded.spec.group_welcome)

    with pytest.raises(TemplateRuntimeError):
        compiled.render({})
    with pytest.raises(ValueError, match="3001 bytes"):
        compiled.render({"rules": "x" * 3001})


def test_check_warns_of_a_group_mass_send_per_joiner_and_suggests_group_welcome() -> None:
    steps = "steps:\n  - if: 'true'\n    then:\n      - send: {channel: wecom_group, text: 欢迎}\n"
    _, errors = load_text(HEAD + steps, filename="gw.yaml", channels=PLAYBOOK_CHANNELS)

    assert [e.severity for e in errors] == ["warning"]
    message = errors[0].format()
    assert message.startswith(
        "gw.yaml:7:25: warning: steps[0].then[0].send.channel: channel 'wecom_group' on "
        "group.joined makes one mass-send task per joiner: each spends one of the group's "
        "monthly mass sends"
    )
    assert "Declare group_welcome instead" in message


def test_no_warning_for_a_group_send_on_another_trigger_or_a_customer_send_on_join() -> None:
    cron = HEAD.replace("{event: group.joined}", '{schedule: "0 10 * * 5"}')
    group_send = "steps:\n  - send: {channel: wecom_group, text: 周五福利}\n"
    _, on_schedule = load_text(cron + group_send, filename="a.yaml", channels=PLAYBOOK_CHANNELS)
    customer_send = "steps:\n  - send: {channel: wecom, text: 欢迎}\n"
    _, on_join = load_text(HEAD + customer_send, filename="b.yaml", channels=PLAYBOOK_CHANNELS)

    assert not any("mass-send task per joiner" in e.message for e in on_schedule + on_join)


def test_a_nickname_placeholder_not_in_capitals_is_a_warning() -> None:
    assert load('  text: "欢迎 %nickname%"\n') == [
        "gw.yaml:5:9: warning: group_welcome.text: WeCom replaces %NICKNAME% only in capitals;"
        " %nickname% stays as written"
    ]
