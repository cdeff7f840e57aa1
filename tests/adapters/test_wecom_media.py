"""The media store: one upload per content and kind, until the media_id nears its 3 days;
files from the playbooks folder or https URLs, refused before uploading when WeCom would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import respx
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.wecom import WeComClient
from adapters.wecom.media import MediaStore
from smr.channels import PermanentSendError, RetriableSendError
from smr.content import MB, Media
from smr.repositories.media import UploadKind
from tests.adapters import wecom_fake as fake
from tests.helpers import FakeClock

SECRET = SecretStr(fake.SECRET)
PLAYBOOKS = Path(__file__).resolve().parents[1] / "fixtures"  # holds media/…
POSTER = Media(path="media/poster.png")
CDN = "https://cdn.example.com"


@pytest.fixture
async def client() -> AsyncIterator[WeComClient]:
    c = WeComClient(corp_id=fake.CORP_ID, base_url=fake.BASE, timeout=5)
    yield c
    await c.aclose()


@pytest.fixture(autouse=True)
def gettoken(respx_mock: respx.MockRouter) -> respx.Route:
    return fake.token_route(respx_mock)


@pytest.fixture
async def store(
    client: WeComClient, clock: FakeClock, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[MediaStore]:
    media = MediaStore(client, SECRET, sessions=sessions, playbooks_dir=PLAYBOOKS, clock=clock)
    yield media
    await media.aclose()


def upload_route(respx_mock: respx.MockRouter, api: str = "media/upload") -> respx.Route:
    """Answers media ids MID-1, MID-2, … in turn."""
    answers = [fake.ok(type="image", media_id=f"MID-{n}", created_at="1") for n in range(1, 9)]
    return fake.api(respx_mock, api).mock(side_effect=answers)


async def test_a_file_is_uploaded_once_per_content(
    store: MediaStore, respx_mock: respx.MockRouter
) -> None:
    route = upload_route(respx_mock)
    poster = (PLAYBOOKS / "media" / "poster.png").read_bytes()
    respx_mock.get(f"{CDN}/same-picture").mock(return_value=httpx.Response(200, content=poster))

    first = await store.upload(POSTER, UploadKind.IMAGE)
    again = await store.upload(POSTER, UploadKind.IMAGE)
    same_bytes = await store.upload(Media(url=f"{CDN}/same-picture"), UploadKind.IMAGE)

    assert (first.ref, first.cached) == ("MID-1", False)
    assert (again.ref, again.cached) == ("MID-1", True)
    assert (same_bytes.ref, same_bytes.cached) == ("MID-1", True)
    assert route.call_count == 1
    request = route.calls[0].request
    assert request.url.params["type"] == "image"
    assert b'name="media"; filename="poster.png"' in request.content
    assert b"Content-Type: image/png" in request.content
    assert poster in request.content


async def test_a_media_id_is_uploaded_again_when_less_than_an_hour_remains(
    store: MediaStore, clock: FakeClock, respx_mock: respx.MockRouter
) -> None:
    route = upload_route(respx_mock)

    await store.upload(POSTER, UploadKind.IMAGE)
    clock.advance(days=2, hours=22)  # 2 h left
    kept = await store.upload(POSTER, UploadKind.IMAGE)
    clock.advance(hours=1, minutes=1)  # 59 min left
    renewed = await store.upload(POSTER, UploadKind.IMAGE)
    clock.advance(hours=1)
    after = await store.upload(POSTER, UploadKind.IMAGE)

    assert (kept.ref, kept.cached) == ("MID-1", True)
    assert (renewed.ref, renewed.cached) == ("MID-2", False)
    assert (after.ref, after.cached) == ("MID-2", True)
    assert route.call_count == 2


async def test_moments_media_go_through_upload_attachment_and_are_cached_apart(
    store: MediaStore, respx_mock: respx.MockRouter
) -> None:
    moments = upload_route(respx_mock, "media/upload_attachment")
    plain = upload_route(respx_mock)

    for_moments = await store.upload(POSTER, UploadKind.MOMENT_IMAGE)
    for_tasks = await store.upload(POSTER, UploadKind.IMAGE)
    video = await store.upload(Media(path="media/intro.mp4"), UploadKind.MOMENT_VIDEO)

    assert (for_moments.ref, for_tasks.ref, video.ref) == ("MID-1", "MID-1", "MID-2")
    assert [dict(c.request.url.params) for c in moments.calls] == [
        {"media_type": "image", "attachment_type": "1", "access_token": fake.TOKEN},
        {"media_type": "video", "attachment_type": "1", "access_token": fake.TOKEN},
    ]
    assert plain.call_count == 1
    assert plain.calls[0].request.url.params["type"] == "image"


async def test_a_picture_url_is_permanent(
    store: MediaStore, clock: FakeClock, respx_mock: respx.MockRouter
) -> None:
    url = "https://wework.qpic.cn/wwpic/1/0"
    route = fake.api(respx_mock, "media/uploadimg").mock(return_value=fake.ok(url=url))

    first = await store.upload(POSTER, UploadKind.PICTURE_URL)
    clock.advance(days=90)
    later = await store.upload(POSTER, UploadKind.PICTURE_URL)

    assert (first.ref, later.ref, later.cached) == (url, url, True)
    assert route.call_count == 1


async def test_forgetting_a_refused_id_makes_the_next_send_upload(
    store: MediaStore, respx_mock: respx.MockRouter
) -> None:
    route = upload_route(respx_mock)

    first = await store.upload(POSTER, UploadKind.IMAGE)
    await store.forget([first])
    second = await store.upload(POSTER, UploadKind.IMAGE)

    assert (second.ref, second.cached, route.call_count) == ("MID-2", False, 2)


async def test_a_url_larger_than_wecom_takes_is_refused_before_uploading(
    store: MediaStore, respx_mock: respx.MockRouter
) -> None:
    route = fake.api(respx_mock, "media/uploadimg")
    big = b"\x89PNG\r\n\x1a\n" + b"\0" * (2 * MB)
    respx_mock.get(f"{CDN}/big.png").mock(return_value=httpx.Response(200, content=big))

    with pytest.raises(PermanentSendError) as raised:
        await store.upload(Media(url=f"{CDN}/big.png?sig=SECRET"), UploadKind.PICTURE_URL)

    assert str(raised.value).startswith(f"media URL {CDN}/big.png: 2,097,160 bytes; at most")
    assert "SECRET" not in str(raised.value)
    assert not route.called


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (httpx.Response(404), PermanentSendError),
        (httpx.Response(503), RetriableSendError),
        (httpx.ConnectTimeout("slow"), RetriableSendError),
        (httpx.Response(302, headers={"location": "http://cdn.example.com/a.png"}),
         PermanentSendError),
    ],
)  # fmt: skip
async def test_a_url_that_fails_is_a_send_error(
    store: MediaStore,
    respx_mock: respx.MockRouter,
    answer: httpx.Response | Exception,
    error: type[Exception],
) -> None:
    respx_mock.get(f"{CDN}/a.png").mock(side_effect=[answer])
    respx_mock.get("http://cdn.example.com/a.png").mock(
        return_value=httpx.Response(200, content=(PLAYBOOKS / "media" / "poster.png").read_bytes())
    )

    with pytest.raises(error, match=f"media URL {CDN}/a.png"):
        await store.upload(Media(url=f"{CDN}/a.png"), UploadKind.IMAGE)


async def test_files_wecom_would_refuse_are_not_uploaded(
    store: MediaStore, respx_mock: respx.MockRouter
) -> None:
    route = upload_route(respx_mock)

    with pytest.raises(PermanentSendError, match="is not png or jpeg"):
        await store.upload(Media(path="media/not-a-picture.png"), UploadKind.IMAGE)
    with pytest.raises(PermanentSendError, match=r"no file 'media/gone\.png'"):
        await store.upload(Media(path="media/gone.png"), UploadKind.IMAGE)
    with pytest.raises(PermanentSendError, match=r"leads out of the playbooks folder"):
        await store.upload(Media(path="../conftest.py"), UploadKind.FILE)
    with pytest.raises(PermanentSendError, match="only https URLs"):
        await store.upload(Media(url="http://cdn.example.com/a.png"), UploadKind.IMAGE)

    assert not route.called


async def test_a_file_of_any_kind_keeps_its_name(
    store: MediaStore, respx_mock: respx.MockRouter
) -> None:
    route = upload_route(respx_mock)

    await store.upload(Media(path="media/manual.pdf"), UploadKind.FILE)

    request = route.calls[0].request
    assert request.url.params["type"] == "file"
    assert b'filename="manual.pdf"' in request.content
    assert b"Content-Type: application/octet-stream" in request.content
