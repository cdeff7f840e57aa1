"""A send step's attachments, end to end: checked against the playbooks folder at load,
rendered per run, stored on the delivery, read back by the channel, shown by simulate."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from adapters import PLAYBOOK_CHANNELS
from smr import content
from smr.config import Settings
from smr.models import Delivery
from smr.playbooks import load_text
from smr.runtime import Runtime
from smr.services.catalog import Catalog
from smr.simulate import scenario_events, simulate
from tests.conftest import CORE
from tests.helpers import INGEST, auth, order_event

MEDIA = Path(__file__).resolve().parent.parent / "fixtures" / "media"

CARD = """\
id: thanks-with-card
name: 下单感谢 + 小程序卡片
trigger: {event: order.paid}
steps:
  - send:
      channel: mock
      category: service
      text: 感谢下单
      attachments:
        - miniprogram:
            appid: wx8bd80126147dfAAA
            page: "/pages/order?id={{ event.data.order_id }}"
            title: 查看订单
            cover: media/poster.png
        - link: {title: 会员中心, url: "https://example.com/vip?c={{ contact.id }}"}
"""


@pytest.fixture
def playbooks_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "playbooks"
    shutil.copytree(CORE, directory)
    (directory / "media").mkdir()
    shutil.copy(MEDIA / "poster.png", directory / "media" / "poster.png")
    (directory / "card.yaml").write_text(CARD, encoding="utf-8")
    return directory


def test_a_missing_picture_is_an_error_at_its_line(tmp_path: Path) -> None:
    loaded, errors = load_text(
        CARD, filename="card.yaml", channels=PLAYBOOK_CHANNELS, base_dir=tmp_path
    )

    assert loaded is None
    [error] = errors
    assert (error.line, error.path) == (14, "steps[0].send.attachments[0].miniprogram.cover")
    assert "media/poster.png" in error.message


async def test_attachments_are_rendered_stored_and_handed_to_the_channel(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    posted = await client.post("/v1/events", json=order_event("o-1"), headers=auth(INGEST))
    assert posted.status_code == 202, posted.text
    async with runtime.sessions() as session:
        delivery = await session.scalar(
            select(Delivery).where(Delivery.playbook_id == "thanks-with-card")
        )
    assert delivery is not None

    card, link = (content.from_json(a) for a in delivery.attachments)

    assert card == content.MiniProgram(
        appid="wx8bd80126147dfAAA",
        page="/pages/order?id=order-o-1",
        title="查看订单",
        cover=content.Media(path="media/poster.png"),
    )
    assert link == content.Link(
        title="会员中心", url=f"https://example.com/vip?c={delivery.contact_id}"
    )


async def test_simulate_shows_what_a_send_carries(playbooks_dir: Path) -> None:
    catalog = Catalog(playbooks_dir, PLAYBOOK_CHANNELS)
    catalog.reload()
    first = order_event("o-1")
    events = scenario_events(first, [], now=first_time())

    simulation = await simulate(catalog, events, horizon=timedelta(days=1), settings=Settings())

    [text] = [
        e.text for e in simulation.timeline if e.playbook == "thanks-with-card" and e.kind == "send"
    ]
    assert text == "感谢下单 [miniprogram 查看订单; link 会员中心]"


def first_time() -> datetime:
    return datetime.fromisoformat(order_event("x")["occurred_at"])
