"""The ``moment`` channel (add_moment_task) against a fake WeCom: the exact task body (text,
attachments uploaded for Moments, visible_range from mapped tags and staff), what it refuses
before calling, and the reports that turn the awaiting delivery into sent or failed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import respx
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.wecom import WeComClient
from adapters.wecom.media import MediaStore
from adapters.wecom.moments import CorpTags, WeComMoments
from smr.channels import (
    OutboundMessage,
    Pending,
    PermanentSendError,
    SendRate,
    SendResult,
)
from smr.content import Attachment, Image, Link, Media
from smr.models import MomentTask, MomentTaskStatus
from tests.adapters import wecom_fake as fake
from tests.helpers import FakeClock

SECRET = SecretStr(fake.SECRET)
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TIMEOUT = timedelta(hours=72)
POSTER = Image(Media(path="media/poster.png"))
COVER = Image(Media(path="media/cover.jpg"))
LINK = Link(
    title="新品上市", url="https://shop.example.com/new", picture=Media(path="media/cover.jpg")
)
ADD = "externalcontact/add_moment_task"
RESULT = "externalcontact/get_moment_task_result"
TASK = "externalcontact/get_moment_task"
CANCEL = "externalcontact/cancel_moment_task"
POLICIES = "timezone: Asia/Shanghai\nwecom_tags: {会员: etMEMBER, 高价值: etVIP}\n"


@pytest.fixture
async def client() -> AsyncIterator[WeComClient]:
    c = WeComClient(corp_id=fake.CORP_ID, base_url=fake.BASE, timeout=5)
    yield c
    await c.aclose()


@pytest.fixture(autouse=True)
def gettoken(respx_mock: respx.MockRouter) -> respx.Route:
    return fake.token_route(respx_mock)


@pytest.fixture
def uploads(respx_mock: respx.MockRouter) -> respx.Route:
    """upload_attachment answering ``moment-<type>-<n>``."""
    count = iter(range(1, 100))

    def answer(request: httpx.Request) -> httpx.Response:
        kind = request.url.params["media_type"]
        assert request.url.params["attachment_type"] == "1"  # 朋友圈
        return fake.ok(type=kind, media_id=f"moment-{kind}-{next(count)}", created_at="1")

    return fake.api(respx_mock, "media/upload_attachment").mock(side_effect=answer)


@pytest.fixture
async def moments(
    client: WeComClient,
    clock: FakeClock,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> AsyncIterator[WeComMoments]:
    (tmp_path / "policies.yaml").write_text(POLICIES, encoding="utf-8")
    media = MediaStore(client, SECRET, sessions=sessions, playbooks_dir=FIXTURES, clock=clock)
    yield WeComMoments(
        client,
        SECRET,
        clock=clock,
        timeout=TIMEOUT,
        sessions=sessions,
        corp_tags=CorpTags(tmp_path),
        media=media,
    )
    await media.aclose()


def post(
    text: str | None = "新品上市，老客专享",
    *,
    items: tuple[Attachment, ...] = (),
    delivery_id: str = "dl_m1",
    **params: str,
) -> OutboundMessage:
    message = fake.message(delivery_id, channel="moment", text=text, contact_id="corp")
    return replace(message, params=params, attachments=items)


async def tasks(sessions: async_sessionmaker[AsyncSession]) -> list[MomentTask]:
    async with sessions() as session:
        return list(await session.scalars(select(MomentTask)))


# --- add_moment_task ---


async def test_a_post_is_one_task_in_wecoms_shape(
    moments: WeComMoments,
    uploads: respx.Route,
    sessions: async_sessionmaker[AsyncSession],
    respx_mock: respx.MockRouter,
) -> None:
    route = fake.api(respx_mock, ADD).mock(return_value=fake.ok(jobid="job-1"))

    result = await moments.send(
        post(items=(POSTER, COVER), tags="会员，高价值", staff="zhangsan, lisi,zhangsan")
    )

    assert fake.body(route.calls[0]) == {
        "text": {"content": "新品上市，老客专享"},
        "attachments": [
            {"msgtype": "image", "image": {"media_id": "moment-image-1"}},
            {"msgtype": "image", "image": {"media_id": "moment-image-2"}},
        ],
        "visible_range": {
            "sender_list": {"user_list": ["zhangsan", "lisi"]},
            "external_contact_list": {"tag_list": ["etMEMBER", "etVIP"]},
        },
    }
    assert uploads.call_count == 2
    assert result.awaiting
    assert result.vendor_message_id == "job-1"
    (task,) = await tasks(sessions)
    assert (task.jobid, task.delivery_id, task.status) == ("job-1", "dl_m1", "creating")


async def test_without_tags_or_staff_the_post_is_public(
    moments: WeComMoments, uploads: respx.Route, respx_mock: respx.MockRouter
) -> None:
    route = fake.api(respx_mock, ADD).mock(return_value=fake.ok(jobid="job-2"))

    await moments.send(post(text=None, items=(LINK,)))

    assert fake.body(route.calls[0]) == {
        "attachments": [
            {
                "msgtype": "link",
                "link": {
                    "title": "新品上市",
                    "url": "https://shop.example.com/new",
                    "media_id": "moment-image-1",
                },
            }
        ]
    }


@pytest.mark.parametrize(
    ("message", "said"),
    [
        (post(items=(POSTER, LINK)), "not a mix"),
        (post(items=(POSTER,) * 10), "10 attachments; Moments take 9"),
        (post(tags="会员,新客"), "tags 新客 have no WeCom corp tag id"),
        (post(tag="会员"), "unknown params tag"),
        (post("字" * 2001), "2001 characters"),
        (post("😀" * 1001), "4004 bytes"),
        (post(text=None), "needs text or attachments"),
    ],
    ids=[
        "mixed",
        "ten-images",
        "unmapped-tag",
        "unknown-param",
        "long-text",
        "text-bytes",
        "empty",
    ],
)
async def test_what_wecom_would_refuse_is_refused_before_calling(
    moments: WeComMoments,
    uploads: respx.Route,
    respx_mock: respx.MockRouter,
    message: OutboundMessage,
    said: str,
) -> None:
    route = fake.api(respx_mock, ADD).mock(return_value=fake.ok(jobid="job-x"))

    with pytest.raises(PermanentSendError, match=said):
        await moments.send(message)

    assert not route.called


async def test_a_refused_task_fails_the_send(
    moments: WeComMoments, respx_mock: respx.MockRouter
) -> None:
    fake.api(respx_mock, ADD).mock(return_value=fake.err(40058, "invalid text size"))

    with pytest.raises(PermanentSendError, match="errcode=40058"):
        await moments.send(post())


def test_the_channel_declares_wecoms_rate_and_needs_no_recipient() -> None:
    assert WeComMoments.send_rates == (SendRate(max=10, per=timedelta(minutes=1)),)
    assert WeComMoments.capabilities.needs == frozenset()
    assert WeComMoments.capabilities.confirmed_by_staff
    assert not WeComMoments.capabilities.idempotent


# --- reports ---


def pending(clock: FakeClock, *, hours: float = 1, jobid: str = "job-1") -> Pending:
    return Pending(post(), jobid, clock.now - timedelta(hours=hours))


def job(status: int, **result: object) -> httpx.Response:
    return fake.ok(status=status, type="add_moment_task", result=result)


def published(*staff: tuple[str, int]) -> httpx.Response:
    rows = [{"userid": u, "publish_status": s} for u, s in staff]
    return fake.ok(task_list=rows, next_cursor="")


async def test_a_task_wecom_is_still_making_stays_awaiting(
    moments: WeComMoments, clock: FakeClock, respx_mock: respx.MockRouter
) -> None:
    result = respx_mock.get(f"{fake.BASE}/cgi-bin/{RESULT}").mock(return_value=job(2))
    listed = fake.api(respx_mock, TASK).mock(return_value=published())

    assert await moments.poll_reports([pending(clock)], now=clock.now) == [None]

    assert result.calls[0].request.url.params["jobid"] == "job-1"
    assert not listed.called


async def test_a_published_moment_is_sent_with_its_publishers_recorded(
    moments: WeComMoments,
    clock: FakeClock,
    sessions: async_sessionmaker[AsyncSession],
    respx_mock: respx.MockRouter,
) -> None:
    respx_mock.get(f"{fake.BASE}/cgi-bin/{RESULT}").mock(
        return_value=job(
            3,
            errcode=0,
            errmsg="ok",
            moment_id="mom-1",
            invalid_sender_list={"user_list": ["ghost"]},
        )
    )
    listed = fake.api(respx_mock, TASK).mock(
        return_value=published(("zhangsan", 1), ("lisi", 1), ("wangwu", 0))
    )

    (report,) = await moments.poll_reports([pending(clock)], now=clock.now)

    assert isinstance(report, SendResult)
    assert "published by lisi, zhangsan" in str(report.response)
    assert "invalid_sender_list={'user_list': ['ghost']}" in str(report.response)
    assert fake.body(listed.calls[0]) == {"moment_id": "mom-1", "limit": 1000}
    (task,) = await tasks(sessions)
    assert (task.moment_id, task.status) == ("mom-1", MomentTaskStatus.PUBLISHED)
    assert task.published_by == ["lisi", "zhangsan"]


async def test_a_moment_nobody_published_in_time_fails_and_is_cancelled(
    moments: WeComMoments,
    clock: FakeClock,
    sessions: async_sessionmaker[AsyncSession],
    respx_mock: respx.MockRouter,
) -> None:
    result = respx_mock.get(f"{fake.BASE}/cgi-bin/{RESULT}").mock(
        return_value=job(3, errcode=0, errmsg="ok", moment_id="mom-2")
    )
    fake.api(respx_mock, TASK).mock(return_value=published(("zhangsan", 0)))
    cancel = fake.api(respx_mock, CANCEL).mock(return_value=fake.ok())

    early = await moments.poll_reports([pending(clock, hours=1)], now=clock.now)
    (late,) = await moments.poll_reports([pending(clock, hours=72)], now=clock.now)

    assert early == [None]
    assert result.call_count == 1  # the moment_id is kept from the first report
    assert isinstance(late, PermanentSendError)
    assert "no staff published it within 72h; task cancelled" in late.response
    assert [fake.body(c) for c in cancel.calls] == [{"moment_id": "mom-2"}]
    (task,) = await tasks(sessions)
    assert (task.moment_id, task.status) == ("mom-2", MomentTaskStatus.FAILED)


async def test_a_task_wecom_refused_fails(
    moments: WeComMoments,
    clock: FakeClock,
    sessions: async_sessionmaker[AsyncSession],
    respx_mock: respx.MockRouter,
) -> None:
    respx_mock.get(f"{fake.BASE}/cgi-bin/{RESULT}").mock(
        return_value=job(3, errcode=40003, errmsg="invalid userid")
    )

    (report,) = await moments.poll_reports([pending(clock)], now=clock.now)

    assert isinstance(report, PermanentSendError)
    assert "errcode=40003" in report.response
    (task,) = await tasks(sessions)
    assert task.status == MomentTaskStatus.FAILED
