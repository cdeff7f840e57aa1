"""``smr playbooks test``: the bundled tactics' own test files pass, and a case that fails is
reported where its file says what was expected, in an ops person's words."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from typer.testing import CliRunner, Result

from smr.cli import app
from smr.playbook_tests import case_files
from tests.conftest import BUNDLED, CORE


async def smr_playbooks_test(target: Path) -> Result:
    # In a thread: the command runs its own event loop, as from a shell.
    return await asyncio.to_thread(CliRunner().invoke, app, ["playbooks", "test", str(target)])


async def test_the_bundled_tactics_pass_their_own_tests() -> None:
    result = await smr_playbooks_test(BUNDLED)

    assert result.exit_code == 0, result.output
    files = len(case_files(BUNDLED))
    assert files >= 4
    assert result.stdout.endswith(" failed\n")
    assert ", 0 failed" in result.stdout
    assert f"in {files} files" in result.stdout


CUSTOMER = (
    'contact: {phone: "13800000000", wecom_userid: wmA, name: 小美, tags: [会员],'
    " attributes: {城市: 上海, wecom_owner: zhangsan}}\n"
)
FAILING = (
    CUSTOMER
    + """cases:
  - name: 问价格
    events:
      - {type: chat.message, data: {text: 多少钱}}
    horizon: 1d
    expect:
      - {at: 0s, send: {playbook: keyword-price, text_contains: 价格}}
      - {at: 1d, send: {playbook: keyword-price}}
      - send: {playbook: keyword-price, text_contains: 打折}
      - {not_sent: keyword-price}
      - tags: {include: [会员, 询价, 新客]}
      - attributes: {城市: 北京}
  - name: 下单感谢
    start: "2026-11-23 23:00"
    events:
      - {at: 1h, type: order.paid, data: {order_id: A1, total: 99}}
    horizon: 1d
    expect:
      - {at: 1d 00:00, send: {playbook: order-thank-you, channel: wecom, text_contains: A1}}
"""
)


async def test_a_failing_case_says_where_and_what_was_expected_and_what_came(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "playbooks"
    shutil.copytree(CORE, folder)
    (folder / "tests").mkdir()
    (folder / "tests" / "price.yaml").write_text(FAILING, encoding="utf-8")

    result = await smr_playbooks_test(folder)

    assert result.exit_code == 1
    file = folder / "tests" / "price.yaml"
    reply = (
        "day 0 10:00 keyword-price wecom_kf sent '小美，价格和优惠都在这里：https://example.com'"
    )
    assert result.stderr.splitlines() == [
        f"{file}:9: 问价格: expected a sent message from keyword-price on 1d, got {reply}",
        f"{file}:10: 问价格: expected a sent message from keyword-price containing '打折',"
        f" got {reply}",
        f"{file}:11: 问价格: expected no message from keyword-price, got {reply}",
        f"{file}:12: 问价格: expected tags to include ['新客'], got ['会员', '询价']",
        f"{file}:13: 问价格: expected attributes {{城市: '北京'}}, got {{城市: '上海'}}",
    ]
    assert result.stdout == "2 cases in 1 files: 1 passed, 1 failed\n"


async def test_a_test_file_that_does_not_read_as_tests_is_an_error_at_its_line(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "playbooks"
    shutil.copytree(CORE, folder)
    (folder / "tests").mkdir()
    bad = CUSTOMER + "cases:\n  - name: x\n    events: [{type: chat.message, at: 3 days}]\n"
    (folder / "tests" / "bad.yaml").write_text(bad + "    expect: [{tags: {}, send: {}}]\n")

    result = await smr_playbooks_test(folder / "tests" / "bad.yaml")

    assert result.exit_code == 1
    file = folder / "tests" / "bad.yaml"
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"{file}:4:")
    assert "cases[0].events[0].at: " in lines[0]
    assert "'3 days' is not a moment" in lines[0]
    assert lines[1].startswith(f"{file}:5:")
    assert (
        "say one thing: send, not_sent, converted, tags, segments or attributes (got send, tags)"
        in lines[1]
    )
    assert result.stdout == "0 cases in 1 files: 0 passed, 0 failed, 2 errors\n"
