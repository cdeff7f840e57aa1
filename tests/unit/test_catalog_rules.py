"""What the catalog works out once per event type follows the playbooks as they load."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from adapters import PLAYBOOK_CHANNELS
from smr.services.catalog import Catalog

SEND = '  - send: {channel: mock, category: service, text: "好"}\n'


def _write(folder: Path, name: str, head: str) -> None:
    (folder / f"{name}.yaml").write_text(f"id: {name}\nname: {name}\n{head}steps:\n{SEND}")


def test_rules_follow_reloads_and_keep_exits_of_every_known_version(tmp_path: Path) -> None:
    _write(tmp_path, "thanks", "mode: parallel\ntrigger: {event: order.paid}\n")
    _write(tmp_path, "once", "trigger: {event: order.paid}\n")  # single mode, the default
    _write(tmp_path, "calm", "mode: parallel\ncooldown: 10m\ntrigger: {event: order.paid}\n")
    catalog = Catalog(tmp_path, PLAYBOOK_CHANNELS)
    assert not catalog.reload().errors

    paid = catalog.rules_for("order.paid")
    assert paid.watched == {"once", "calm"}
    assert paid.cooldown == timedelta(minutes=10)
    assert not paid.restarts
    assert not paid.exiting
    assert catalog.rules_for("chat.message").watched == frozenset()

    exits = "exit_on:\n  - {event: order.refunded}\n"
    _write(tmp_path, "once", f"mode: restart\ntrigger: {{event: order.paid}}\n{exits}")
    assert not catalog.reload().errors
    assert catalog.rules_for("order.paid").restarts
    assert catalog.rules_for("order.refunded").exiting == {"once"}
    assert catalog.exiting_on(["order.refunded", "chat.message"]) == {"once"}

    # Runs of the version with the exit rule may still be waiting: it keeps counting.
    _write(tmp_path, "once", "trigger: {event: order.paid}\n")
    assert not catalog.reload().errors
    assert not catalog.rules_for("order.paid").restarts
    assert catalog.rules_for("order.refunded").exiting == {"once"}
