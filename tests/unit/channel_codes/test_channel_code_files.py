"""The channel codes folder: strict schema, errors at file:line:col, unique states, last good
declaration kept, `smr playbooks check`, and the bundled example."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapters import PLAYBOOK_CHANNELS
from smr.channel_codes import FOLDER, ChannelCodes, CodeKind, load_folder, load_text
from smr.cli import app
from smr.services.catalog import Catalog
from tests.conftest import BUNDLED, CORE

GOOD = """\
codes:
  - state: theatre-desk
    name: 剧场售票处
    staff: [zhangsan, lisi]
    remark: 剧场
  - state: livestream-1211
    name: 12月11日直播
    group: {chat_ids: [wrOgQhDgAAMY], room_base_name: 直播福利群, room_base_id: 1}
"""


def folder(tmp_path: Path, **files: str) -> Path:
    (tmp_path / FOLDER).mkdir()
    for name, text in files.items():
        (tmp_path / FOLDER / f"{name}.yaml").write_text(text, encoding="utf-8")
    return tmp_path


def test_a_good_file_declares_person_and_group_codes() -> None:
    codes, errors = load_text(GOOD, filename="codes.yaml")

    assert errors == []
    assert codes is not None
    desk, live = (c.spec for c in codes)
    assert (desk.kind, desk.wecom_type, desk.skip_verify, desk.welcome) == (
        CodeKind.PERSON,
        2,
        True,
        True,
    )
    assert live.kind is CodeKind.GROUP
    assert live.wecom_type is None
    assert live.group is not None
    assert live.group.auto_create_room is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "codes:\n  - state: a b\n    name: x\n    staff: [u]\n",
            "codes.yaml:2:12: codes[0].state: use 1-30 letters, digits, '_' or '-'",
        ),
        (
            "codes:\n  - state: a\n    name: x\n    staff: [u]\n    skip_verify: yes\n",
            "codes.yaml:5:18: codes[0].skip_verify: expected true or false, got text 'yes'",
        ),
        (
            "codes:\n  - state: a\n    nam: x\n    staff: [u]\n",
            "codes.yaml:3:5: codes[0].nam: unknown field 'nam' (did you mean 'name'?)",
        ),
        (
            "codes:\n  - state: a\n    name: x\n",
            "codes.yaml:2:5: codes[0]: give staff (userids) or departments",
        ),
        (
            "codes:\n  - state: a\n    name: x\n    staff: [u]\n    group: {chat_ids: [c]}\n",
            "codes.yaml:2:5: codes[0]: a group code takes no staff",
        ),
        (
            "codes:\n  - state: a\n    name: x\n    group: {chat_ids: [a, b, c, d, e, f]}\n",
            "codes.yaml:4:23: codes[0].group.chat_ids: at most 5 items",
        ),
        (
            "codes:\n  - state: a\n    name: x\n    group:\n      chat_ids: [c]\n"
            "      auto_create_room: false\n      room_base_id: 2\n",
            "codes.yaml:5:7: codes[0].group: room_base_id needs auto_create_room: true",
        ),
        (
            "codes:\n  - state: a\n    name: x\n    staff: [u]\n    remark: " + "长" * 31 + "\n",
            "codes.yaml:5:13: codes[0].remark: ",
        ),
        ("codes: [\n", "codes.yaml:2:1: YAML: "),
        ("- a\n", "codes.yaml:1:1: expected a mapping with 'codes:'"),
    ],
)
def test_errors_point_at_file_line_and_column(text: str, expected: str) -> None:
    codes, errors = load_text(text, filename="codes.yaml")

    assert codes is None
    assert errors, text
    assert errors[0].format().startswith(expected), errors[0].format()


def test_a_state_declared_twice_is_an_error_at_the_second(tmp_path: Path) -> None:
    again = "codes:\n  - state: x\n    name: 一\n    staff: [u]\n  - state: theatre-desk\n"
    again += "    name: 二\n    staff: [v]\n"
    folder(tmp_path, a=GOOD, b=again)

    declared, broken, errors = load_folder(tmp_path)

    assert broken == set()
    assert [e.format() for e in errors] == [
        f"{tmp_path / FOLDER / 'b.yaml'}:5:12: codes[1].state: duplicate channel code state"
        f" 'theatre-desk' (already declared in {tmp_path / FOLDER / 'a.yaml'})"
    ]
    assert sorted(declared.codes) == ["livestream-1211", "theatre-desk", "x"]
    assert declared.codes["theatre-desk"].spec.name == "剧场售票处"


def test_no_folder_means_unmanaged_and_an_empty_file_declares_nothing(tmp_path: Path) -> None:
    assert load_folder(tmp_path)[0].managed is False

    folder(tmp_path, codes="")
    declared, _, errors = load_folder(tmp_path)

    assert (declared.managed, dict(declared.codes), errors) == (True, {}, [])


def test_a_file_turned_invalid_keeps_its_last_good_codes(tmp_path: Path) -> None:
    folder(tmp_path, codes=GOOD)
    codes = ChannelCodes()
    assert codes.reload(tmp_path) == []

    (tmp_path / FOLDER / "codes.yaml").write_text("codes:\n  - state: [\n", encoding="utf-8")
    errors = codes.reload(tmp_path)

    assert errors
    assert errors[0].file.endswith("codes.yaml")
    assert sorted(codes.current.codes) == ["livestream-1211", "theatre-desk"]

    (tmp_path / FOLDER / "codes.yaml").unlink()
    assert codes.reload(tmp_path) == []
    assert dict(codes.current.codes) == {}


def test_the_catalog_reloads_codes_and_reports_their_errors(tmp_path: Path) -> None:
    for file in CORE.iterdir():
        (tmp_path / file.name).write_bytes(file.read_bytes())
    folder(tmp_path, codes=GOOD)
    catalog = Catalog(tmp_path, PLAYBOOK_CHANNELS)
    catalog.reload()
    assert sorted(catalog.channel_codes.current.codes) == ["livestream-1211", "theatre-desk"]
    playbooks = set(catalog.result.playbooks)

    (tmp_path / FOLDER / "more.yaml").write_text("codes: 3\n", encoding="utf-8")
    assert catalog.changed_on_disk()
    report = catalog.reload()

    assert set(catalog.result.playbooks) == playbooks, "a code file is never a playbook"
    assert [e.file for e in report.errors] == [str(tmp_path / FOLDER / "more.yaml")]
    assert not catalog.changed_on_disk()


def test_check_walks_the_codes_folder_of_a_playbooks_folder(tmp_path: Path) -> None:
    for file in CORE.iterdir():
        (tmp_path / file.name).write_bytes(file.read_bytes())
    (tmp_path / "broken.yaml").unlink(missing_ok=True)
    folder(tmp_path, codes="codes:\n  - state: a\n    name: x\n    staff: [u]\n    remark: 7\n")

    result = CliRunner().invoke(app, ["playbooks", "check", str(tmp_path)])
    single = CliRunner().invoke(app, ["playbooks", "check", str(tmp_path / FOLDER / "codes.yaml")])

    where = f"{tmp_path / FOLDER / 'codes.yaml'}:5:13: codes[0].remark:"
    assert (result.exit_code, single.exit_code) == (1, 1)
    assert where in result.output, result.output
    assert where in single.output, single.output


def test_the_bundled_codes_are_valid() -> None:
    result = CliRunner().invoke(app, ["playbooks", "check", str(BUNDLED)])

    assert result.exit_code == 0, result.output
    assert "3 channel codes valid" in result.output
    declared, _, errors = load_folder(BUNDLED)
    assert errors == []
    assert sorted(declared.codes) == ["merch-counter", "poster-2026", "theatre-desk"]
