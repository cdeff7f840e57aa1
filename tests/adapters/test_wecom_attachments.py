"""Attachments on the WeCom channels: the exact JSON each API takes (add_msg_template and
send_welcome_msg ``attachments``, one kf/send_msg per item, Moments, group welcome templates),
uploads once per task, and one new upload after WeCom refuses a cached media_id (40007)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.wecom import WeComClient, WeComKf, WeComTasks, WeComWelcome
from adapters.wecom import attachments as shapes
from adapters.wecom.media import MediaStore
from smr.channels import OutboundMessage, PermanentSendError, SendResult, SkippedSend
from smr.content import Attachment, File, Image, Link, Media, MiniProgram, Video
from tests.adapters import wecom_fake as fake
from tests.adapters.conftest import seed_kf
from tests.helpers import FakeClock

SECRET = SecretStr(fake.SECRET)
PLAYBOOKS = Path(__file__).resolve().parents[1] / "fixtures"
PICURL = "https://wework.qpic.cn/wwpic/cover/0"
POSTER = Image(Media(path="media/poster.png"))
LINK = Link(
    title="新品上市",
    url="https://shop.example.com/new?c=ct_1",
    description="老客专享",
    picture=Media(path="media/cover.jpg"),
)
CARD = MiniProgram(
    appid="wx8bd80126147dfAAA",
    page="/pages/item?sku=SKU-9",
    title="立即购买",
    cover=Media(path="media/poster.png"),
)
EVERY_KIND: tuple[Attachment, ...] = (
    POSTER,
    LINK,
    CARD,
    Video(Media(path="media/intro.mp4")),
    File(Media(path="media/manual.pdf")),
)


@pytest.fixture
async def client() -> AsyncIterator[WeComClient]:
    c = WeComClient(corp_id=fake.CORP_ID, base_url=fake.BASE, timeout=5)
    yield c
    await c.aclose()


@pytest.fixture(autouse=True)
def gettoken(respx_mock: respx.MockRouter) -> respx.Route:
    return fake.token_route(respx_mock)


@pytest.fixture
async def media(
    client: WeComClient, clock: FakeClock, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[MediaStore]:
    store = MediaStore(client, SECRET, sessions=sessions, playbooks_dir=PLAYBOOKS, clock=clock)
    yield store
    await store.aclose()


@pytest.fixture
def uploads(respx_mock: respx.MockRouter) -> respx.Route:
    """media/upload answering ``<type>-<n>`` (image-1, video-2, …), and uploadimg PICURL."""
    count = iter(range(1, 100))

    def answer(request: httpx.Request) -> httpx.Response:
        kind = request.url.params.get("type") or request.url.params["media_type"]
        return fake.ok(type=kind, media_id=f"{kind}-{next(count)}", created_at="1")

    fake.api(respx_mock, "media/uploadimg").mock(return_value=fake.ok(url=PICURL))
    fake.api(respx_mock, "media/upload_attachment").mock(side_effect=answer)
    return fake.api(respx_mock, "media/upload").mock(side_effect=answer)


def task_message(
    customer: str, *, text: str | None = "周五会员日", items: Sequence[Attachment] = EVERY_KIND
) -> OutboundMessage:
    message = fake.message(f"dl_{customer}", text=text, wecom_userid=customer, owner_staff="zs")
    return replace(message, attachments=tuple(items))


# --- add_msg_template ---


async def test_a_task_carries_every_kind_in_wecoms_shape(
    client: WeComClient,
    clock: FakeClock,
    media: MediaStore,
    uploads: respx.Route,
    respx_mock: respx.MockRouter,
) -> None:
    route = fake.api(respx_mock, "externalcontact/add_msg_template").mock(
        return_value=fake.ok(msgid="msgT1")
    )
    tasks = WeComTasks(client, SECRET, clock=clock, timeout=timedelta(hours=72), media=media)

    results = await tasks.send_batch([task_message("wm-1"), task_message("wm-2")])

    assert route.call_count == 1
    assert fake.body(route.calls[0]) == {
        "chat_type": "single",
        "external_userid": ["wm-1", "wm-2"],
        "sender": "zs",
        "text": {"content": "周五会员日"},
        "attachments": [
            {"msgtype": "image", "image": {"media_id": "image-1"}},
            {
                "msgtype": "link",
                "link": {
                    "title": "新品上市",
                    "url": "https://shop.example.com/new?c=ct_1",
                    "desc": "老客专享",
                    "picurl": PICURL,
                },
            },
            {
                "msgtype": "miniprogram",
                "miniprogram": {
                    "title": "立即购买",
                    "pic_media_id": "image-1",  # the same picture: uploaded once
                    "appid": "wx8bd80126147dfAAA",
                    "page": "/pages/item?sku=SKU-9",
                },
            },
            {"msgtype": "video", "video": {"media_id": "video-2"}},
            {"msgtype": "file", "file": {"media_id": "file-3"}},
        ],
    }
    assert uploads.call_count == 3
    assert all(isinstance(r, SendResult) and r.awaiting for r in results)


async def test_tasks_differ_by_attachments_and_share_uploads(
    client: WeComClient,
    clock: FakeClock,
    media: MediaStore,
    uploads: respx.Route,
    respx_mock: respx.MockRouter,
) -> None:
    route = fake.api(respx_mock, "externalcontact/add_msg_template").mock(
        side_effect=[fake.ok(msgid="m-a"), fake.ok(msgid="m-b"), fake.ok(msgid="m-c")]
    )
    tasks = WeComTasks(client, SECRET, clock=clock, timeout=timedelta(hours=72), media=media)
    batch = [
        task_message("wm-1", items=[POSTER]),
        task_message("wm-2", items=[POSTER]),
        task_message("wm-3", items=[POSTER, LINK]),
        task_message("wm-4", text=None, items=[POSTER]),
    ]

    await tasks.send_batch(batch)

    bodies = sorted((fake.body(c) for c in route.calls), key=lambda b: b["external_userid"])
    assert [b["external_userid"] for b in bodies] == [["wm-1", "wm-2"], ["wm-3"], ["wm-4"]]
    assert "text" not in bodies[2]  # attachments alone
    assert uploads.call_count == 1  # one picture, uploaded once for all three tasks


async def test_attachments_without_a_media_store_are_refused(
    client: WeComClient, clock: FakeClock, respx_mock: respx.MockRouter
) -> None:
    route = fake.api(respx_mock, "externalcontact/add_msg_template")
    tasks = WeComTasks(client, SECRET, clock=clock, timeout=timedelta(hours=72))

    (result,) = await tasks.send_batch([task_message("wm-1", items=[POSTER])])

    assert isinstance(result, PermanentSendError)
    assert not route.called


async def test_a_refused_cached_media_id_is_uploaded_again_once(
    client: WeComClient,
    clock: FakeClock,
    media: MediaStore,
    uploads: respx.Route,
    respx_mock: respx.MockRouter,
) -> None:
    route = fake.api(respx_mock, "externalcontact/add_msg_template").mock(
        side_effect=[
            fake.ok(msgid="m-1"),
            fake.err(40007, "invalid media_id"),
            fake.ok(msgid="m-2"),
        ]
    )
    tasks = WeComTasks(client, SECRET, clock=clock, timeout=timedelta(hours=72), media=media)

    await tasks.send_batch([task_message("wm-1", items=[POSTER])])  # uploads image-1
    (result,) = await tasks.send_batch([task_message("wm-2", items=[POSTER])])

    assert isinstance(result, SendResult)
    assert result.vendor_message_id == "m-2"
    used = [fake.body(c)["attachments"][0]["image"]["media_id"] for c in route.calls]
    assert used == ["image-1", "image-1", "image-2"]
    assert uploads.call_count == 2


async def test_a_fresh_media_id_refused_is_not_uploaded_again(
    client: WeComClient,
    clock: FakeClock,
    media: MediaStore,
    uploads: respx.Route,
    respx_mock: respx.MockRouter,
) -> None:
    route = fake.api(respx_mock, "externalcontact/add_msg_template").mock(
        return_value=fake.err(40007, "invalid media_id")
    )
    tasks = WeComTasks(client, SECRET, clock=clock, timeout=timedelta(hours=72), media=media)

    (result,) = await tasks.send_batch([task_message("wm-1", items=[POSTER])])

    assert isinstance(result, PermanentSendError)
    assert "errcode=40007" in str(result)
    assert (route.call_count, uploads.call_count) == (1, 1)


@pytest.mark.parametrize(
    ("item", "error"),
    [
        (Link(title="看看", url="http://shop.example.com"), "is not an https URL"),
        (Link(title="标" * 43, url="https://shop.example.com"), "link title is 129 bytes"),
        (
            MiniProgram(appid="wx8bd80126147dfAAA", page="/p", title="卡" * 22, cover=POSTER.media),
            "miniprogram title is 66 bytes",
        ),
    ],
)
async def test_rendered_texts_past_wecoms_limits_fail_the_send(
    client: WeComClient,
    clock: FakeClock,
    media: MediaStore,
    uploads: respx.Route,
    item: Attachment,
    error: str,
) -> None:
    tasks = WeComTasks(client, SECRET, clock=clock, timeout=timedelta(hours=72), media=media)

    (result,) = await tasks.send_batch([task_message("wm-1", items=[item])])

    assert isinstance(result, PermanentSendError)
    assert error in str(result)


# --- send_welcome_msg ---


async def test_a_welcome_carries_its_attachments(
    client: WeComClient,
    clock: FakeClock,
    media: MediaStore,
    uploads: respx.Route,
    respx_mock: respx.MockRouter,
) -> None:
    route = fake.api(respx_mock, "externalcontact/send_welcome_msg").mock(return_value=fake.ok())
    welcome = WeComWelcome(client, SECRET, clock=clock, media=media)
    message = fake.message(channel="wecom_welcome", text="欢迎", welcome_code="CODE-1")

    await welcome.send(replace(message, attachments=(POSTER, CARD)))

    assert fake.body(route.calls[0]) == {
        "welcome_code": "CODE-1",
        "text": {"content": "欢迎"},
        "attachments": [
            {"msgtype": "image", "image": {"media_id": "image-1"}},
            {
                "msgtype": "miniprogram",
                "miniprogram": {
                    "title": "立即购买",
                    "pic_media_id": "image-1",
                    "appid": "wx8bd80126147dfAAA",
                    "page": "/pages/item?sku=SKU-9",
                },
            },
        ],
    }


# --- kf/send_msg ---


def kf_message(*items: Attachment, text: str | None = "您要的资料") -> OutboundMessage:
    message = fake.message("dl_kf_1", channel="wecom_kf", text=text, wecom_userid="wm-1")
    return replace(message, attachments=items)


async def test_kf_sends_one_message_per_attachment(
    client: WeComClient,
    clock: FakeClock,
    media: MediaStore,
    sessions: async_sessionmaker[AsyncSession],
    uploads: respx.Route,
    respx_mock: respx.MockRouter,
) -> None:
    await seed_kf(sessions, now=clock.now, messages=[clock.now - timedelta(hours=1)])
    route = fake.api(respx_mock, "kf/send_msg").mock(return_value=fake.ok())
    kf = WeComKf(client, SECRET, clock=clock, sessions=sessions, media=media)

    result = await kf.send(kf_message(POSTER, LINK, CARD))

    base = {"touser": "wm-1", "open_kfid": "wk-shop"}
    assert [fake.body(c) for c in route.calls] == [
        {**base, "msgid": "dl_kf_1", "msgtype": "text", "text": {"content": "您要的资料"}},
        {**base, "msgid": "dl_kf_1-1", "msgtype": "image", "image": {"media_id": "image-1"}},
        {
            **base,
            "msgid": "dl_kf_1-2",
            "msgtype": "link",
            "link": {
                "title": "新品上市",
                "url": "https://shop.example.com/new?c=ct_1",
                "desc": "老客专享",
                "thumb_media_id": "image-2",
            },
        },
        {
            **base,
            "msgid": "dl_kf_1-3",
            "msgtype": "miniprogram",
            "miniprogram": {
                "appid": "wx8bd80126147dfAAA",
                "title": "立即购买",
                "thumb_media_id": "image-1",
                "pagepath": "/pages/item?sku=SKU-9",
            },
        },
    ]
    assert result.vendor_message_id == "dl_kf_1"


async def test_kf_parts_count_against_the_window(
    client: WeComClient,
    clock: FakeClock,
    media: MediaStore,
    sessions: async_sessionmaker[AsyncSession],
    respx_mock: respx.MockRouter,
) -> None:
    now = clock.now
    await seed_kf(sessions, now=now, messages=[now - timedelta(hours=2)], sent=[now] * 3)
    route = fake.api(respx_mock, "kf/send_msg")
    kf = WeComKf(client, SECRET, clock=clock, sessions=sessions, media=media)

    with pytest.raises(SkippedSend) as raised:
        await kf.send(kf_message(POSTER, POSTER))  # 3 parts; 2 left in the window

    assert raised.value.reason == "window_expired"
    assert not route.called


async def test_kf_refuses_a_link_without_a_picture(
    client: WeComClient,
    clock: FakeClock,
    media: MediaStore,
    sessions: async_sessionmaker[AsyncSession],
    respx_mock: respx.MockRouter,
) -> None:
    await seed_kf(sessions, now=clock.now, messages=[clock.now - timedelta(hours=1)])
    fake.api(respx_mock, "kf/send_msg").mock(return_value=fake.ok())
    kf = WeComKf(client, SECRET, clock=clock, sessions=sessions, media=media)

    with pytest.raises(PermanentSendError) as raised:
        await kf.send(kf_message(Link(title="看看", url="https://shop.example.com")))

    assert "1 of 2 messages sent" in (raised.value.response or "")


# --- Moments and group welcome templates ---


async def shaped(build: Any, items: Sequence[Attachment], media: MediaStore) -> Any:
    return await build(items, shapes.MediaIds(media))


async def test_moments_take_images_uploaded_as_attachments(
    media: MediaStore, uploads: respx.Route, respx_mock: respx.MockRouter
) -> None:
    pictures = [POSTER, Image(Media(path="media/cover.jpg"))]

    assert await shaped(shapes.moment_attachments, pictures, media) == [
        {"msgtype": "image", "image": {"media_id": "image-1"}},
        {"msgtype": "image", "image": {"media_id": "image-2"}},
    ]
    assert not uploads.called  # upload_attachment, not media/upload
    assert await shaped(shapes.moment_attachments, [LINK], media) == [
        {
            "msgtype": "link",
            "link": {
                "title": "新品上市",
                "url": "https://shop.example.com/new?c=ct_1",
                "media_id": "image-2",  # cover.jpg, uploaded for Moments above
            },
        }
    ]


@pytest.mark.parametrize(
    ("items", "error"),
    [
        ([POSTER, Video(Media(path="media/intro.mp4"))], "not a mix"),
        ([POSTER] * 10, "10 attachments; Moments take 9"),
        ([Video(Media(path="media/intro.mp4"))] * 2, "2 attachments; Moments take 1"),
        ([File(Media(path="media/manual.pdf"))], "Moments take no file"),
        ([Link(title="看看", url="https://shop.example.com")], "needs a picture"),
    ],
)
async def test_moments_refuse_what_wecom_would(
    media: MediaStore, uploads: respx.Route, items: list[Attachment], error: str
) -> None:
    with pytest.raises(PermanentSendError, match=error):
        await shaped(shapes.moment_attachments, items, media)


async def test_a_group_welcome_template_takes_one_item_under_its_own_key(
    media: MediaStore, uploads: respx.Route
) -> None:
    assert await shaped(shapes.group_welcome, [LINK], media) == {
        "link": {
            "title": "新品上市",
            "url": "https://shop.example.com/new?c=ct_1",
            "desc": "老客专享",
            "picurl": PICURL,
        }
    }
    with pytest.raises(PermanentSendError, match="takes text and one other item"):
        await shaped(shapes.group_welcome, [POSTER, LINK], media)
