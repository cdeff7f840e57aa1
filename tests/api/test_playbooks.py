"""Loaded playbooks, refused files, channel routing; a bad file never stops the good ones."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from smr.cli import app
from smr.models import MockOutbox
from smr.runtime import Runtime
from tests.conftest import BUNDLED, CORE
from tests.helpers import INGEST, auth, order_event

BROKEN = """\
id: broken-one
name: 坏的
trigger:
  event: order.paid
steps:
  - send:
      channel: wechat
      text: hi
"""

ESCAPE = """\
id: escape
name: escape
trigger:
  event: order.paid
steps:
  - send:
      channel: mock
      text: "{{ ''.__class__.__mro__[1].__subclasses__() }}"
"""


@pytest.fixture
def playbooks_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "playbooks"
    shutil.copytree(CORE, folder)
    (folder / "broken.yaml").write_text(BROKEN)
    (folder / "escape.yaml").write_text(ESCAPE)
    return folder


async def test_bad_files_are_reported_and_skipped(client: httpx.AsyncClient) -> None:
    body = (await client.get("/v1/playbooks", headers=auth())).json()

    assert [p["id"] for p in body["playbooks"]] == [
        "keyword-price",
        "order-thank-you",
        "welcome-new-contact",
    ]
    errors = {(e["file"].rsplit("/", 1)[-1], e["line"], e["path"]) for e in body["errors"]}
    assert ("broken.yaml", 7, "steps[0].send.channel") in errors
    assert any(file == "escape.yaml" and line == 8 for file, line, _ in errors)
    assert body["channels"]["wecom"] == "mock"


async def test_valid_playbooks_still_run_and_the_escape_never_executes(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await client.post("/v1/events", json=order_event("o-1"), headers=auth(INGEST))

    await runtime.dispatcher.tick()

    async with runtime.sessions() as session:
        texts = (await session.scalars(select(MockOutbox.text))).all()
        count = await session.scalar(select(func.count()).select_from(MockOutbox))
    assert count == 1
    assert texts[0] is not None
    assert "class" not in texts[0]


def test_check_command_prints_file_line_col_and_fails(playbooks_dir: Path) -> None:
    result = CliRunner().invoke(app, ["playbooks", "check", str(playbooks_dir)])

    assert result.exit_code == 1
    assert f"{playbooks_dir / 'broken.yaml'}:7:16: steps[0].send.channel:" in result.output
    assert "3 playbooks valid, 2 errors" in result.output


def test_check_command_passes_on_the_bundled_library() -> None:
    result = CliRunner().invoke(app, ["playbooks", "check", str(BUNDLED)])

    assert result.exit_code == 0, result.output
    assert "25 playbooks valid, 0 errors" in result.output


def test_check_command_takes_a_single_file(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text(BROKEN)
    good = CliRunner().invoke(app, ["playbooks", "check", str(BUNDLED / "welcome.yaml")])
    bad = CliRunner().invoke(app, ["playbooks", "check", str(tmp_path / "broken.yaml")])

    assert (good.exit_code, bad.exit_code) == (0, 1)
    assert "1 playbooks valid, 0 errors" in good.output
    assert "broken.yaml:7:16: steps[0].send.channel: unknown channel 'wechat'" in bad.output
