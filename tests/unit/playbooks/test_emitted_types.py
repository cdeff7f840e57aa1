"""A custom event type the folder's own ``emit`` steps post is not warned about."""

from __future__ import annotations

from pathlib import Path

from smr.playbooks import load_directory
from tests.unit.playbooks.playbook_support import CHANNELS

EMITTER = """\
id: emitter
name: 记事件
trigger: {event: order.paid}
steps:
  - emit: {type: points.earned, to: {id: "{{ contact.id }}"}}
"""
LISTENER = """\
id: listener
name: 收事件
mode: parallel
trigger: {event: points.earned}
steps:
  - tag: {add: [有积分]}
exit_on:
  - event: points.earned
"""


def warnings(folder: Path) -> list[str]:
    return [e.path for e in load_directory(folder, channels=CHANNELS).errors]


def test_a_type_posted_by_the_folder_is_not_custom_and_one_nobody_posts_is(
    tmp_path: Path,
) -> None:
    (tmp_path / "listener.yaml").write_text(LISTENER, encoding="utf-8")
    assert warnings(tmp_path) == ["trigger.event", "exit_on[0].event"]

    (tmp_path / "emitter.yaml").write_text(EMITTER, encoding="utf-8")
    assert warnings(tmp_path) == []
