"""The ``moment`` channel: a post on customers' Moments (客户朋友圈, externalcontact/
add_moment_task).

A send makes a corp Moments *task*; each staff member in range publishes it from WeCom. The
run's contact plays no part: one send is one post, whoever the run is for. The message:

- ``text``: at most 2,000 characters (4,000 bytes); text or attachments, or both;
- ``attachments``: up to 9 images, or 1 video, or 1 link (with its cover picture), uploaded with
  media/upload_attachment; a mix, or more, is refused (see ``attachments.moment_attachments``);
- ``params.tags``: comma-separated SMR tag names, mapped to WeCom corp tag ids by ``wecom_tags``
  in policies.yaml (read when sending; the last valid file stands while it is broken): only
  customers with one of those tags see it. A tag with no mapping refuses the send;
- ``params.staff``: comma-separated staff userids who publish it (``sender_list``);
- neither: every staff member in the app's visible range publishes it, to all their customers.

WeCom answers a ``jobid``; the delivery is ``awaiting`` with it. ``poll_reports`` asks
get_moment_task_result until WeCom has made the moment (status 3: ``moment_id``, or the
refusal in ``result.errcode``), then get_moment_task: the delivery is sent once a staff
member has published it, and fails (the task cancelled with cancel_moment_task) when nobody
has within ``task_timeout_hours``. The task's state is kept in ``moment_tasks``. WeCom takes
10 moments a minute per corp (``send_rates``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.wecom import attachments as shapes
from adapters.wecom import rich
from adapters.wecom.channels import WeComChannel
from adapters.wecom.client import WeComClient
from adapters.wecom.media import MediaStore
from adapters.wecom.moment_engagement import publishers
from adapters.wecom.wiring import Wiring
from smr.channels import (
    Capabilities,
    OutboundMessage,
    Pending,
    PermanentSendError,
    RetriableSendError,
    SendError,
    SendRate,
    SendResult,
    Target,
)
from smr.content import Attachment, Kind
from smr.db import log_failure, unit_of_work
from smr.models import MomentTaskStatus
from smr.playbooks.loader import POLICIES_FILES, load_policies_text
from smr.repositories import moments as repo

log = logging.getLogger(__name__)

TEXT_CHARS = 2000
TEXT_BYTES = 4000
PARAMS = ("tags", "staff")
_DONE = 3  # get_moment_task_result status: 1 开始创建, 2 正在创建, 3 创建完成
Report = SendResult | SendError | None


class CorpTags:
    """SMR tag → WeCom corp tag id, from ``wecom_tags`` in the playbooks folder's policies,
    read again when the file changes; a broken file leaves the last valid mapping."""

    def __init__(self, playbooks_dir: Path) -> None:
        self._dir = playbooks_dir
        self._seen: tuple[str, int, int] | None = None
        self._tags: dict[str, str] = {}

    def __call__(self) -> Mapping[str, str]:
        file = next((f for n in POLICIES_FILES if (f := self._dir / n).is_file()), None)
        if file is None:
            return {}
        stat = file.stat()
        seen = (file.name, stat.st_mtime_ns, stat.st_size)
        if seen != self._seen:
            policies, _ = load_policies_text(file.read_text("utf-8"), filename=str(file))
            if policies is not None:
                self._tags = dict(policies.wecom_tags)
            self._seen = seen
        return self._tags


class WeComMoments(WeComChannel):
    """Corp Moments tasks; see the module docstring."""

    name: ClassVar[str] = "wecom.moment"
    capabilities: ClassVar[Capabilities] = Capabilities(
        confirmed_by_staff=True,
        target=Target.CORP,
        # Moments take 9 images, 1 video or 1 link (no mini-program cards, no files).
        attachments=frozenset({Kind.IMAGE, Kind.VIDEO, Kind.LINK}),
    )
    send_rates: ClassVar[tuple[SendRate, ...]] = (SendRate(max=10, per=timedelta(minutes=1)),)

    def __init__(
        self,
        client: WeComClient,
        secret: SecretStr,
        *,
        clock: Callable[[], datetime],
        timeout: timedelta,
        sessions: async_sessionmaker[AsyncSession],
        corp_tags: Callable[[], Mapping[str, str]],
        media: MediaStore | None = None,
    ) -> None:
        super().__init__(client, secret, clock=clock, media=media)
        self._timeout = timeout
        self._sessions = sessions
        self._corp_tags = corp_tags

    async def send(self, message: OutboundMessage) -> SendResult:
        body = moment_body(message, self._corp_tags())
        answer = await self._create(body, message.attachments)
        jobid = str(answer.get("jobid") or "")
        if not jobid:
            raise PermanentSendError("add_moment_task: errcode=0 without a jobid")
        try:
            async with unit_of_work(self._sessions) as session:
                await repo.add_task(
                    session, jobid=jobid, delivery_id=message.delivery_id, now=self._clock()
                )
        except Exception as exc:  # WeCom has the task: the first report stores it
            log_failure(log, f"storing Moments task {jobid}", exc)
        return SendResult(
            vendor_message_id=jobid,
            response=f"add_moment_task: jobid={jobid}, awaiting the staff's publishing",
            awaiting=True,
        )

    async def _create(self, body: dict[str, Any], items: Sequence[Attachment]) -> dict[str, Any]:
        api = "externalcontact/add_moment_task"
        if not items:
            return await self._client.call(api, self._secret, body)

        async def build(ids: shapes.MediaIds) -> list[dict[str, Any]]:
            return await shapes.moment_attachments(items, ids)

        async def call(shaped: list[dict[str, Any]]) -> dict[str, Any]:
            return await self._client.call(api, self._secret, {**body, "attachments": shaped})

        return await shapes.with_media(rich.store_for(self._media, items), build, call)

    async def poll_reports(self, pending: Sequence[Pending], *, now: datetime) -> list[Report]:
        """What became of each Moments task (see the module docstring)."""
        return [await self._report(p, now=now) for p in pending]

    async def _report(self, pending: Pending, *, now: datetime) -> Report:
        try:
            return await self._report_of(pending, now=now)
        except RetriableSendError as exc:  # still awaiting; asked again later
            return exc
        except PermanentSendError as exc:
            await self._save(pending, MomentTaskStatus.FAILED, None, (), exc.response)
            return exc

    async def _report_of(self, pending: Pending, *, now: datetime) -> Report:
        jobid = pending.vendor_ref
        async with unit_of_work(self._sessions) as session:
            stored = await repo.task_by_jobid(session, jobid)
        moment_id, note = (stored.moment_id, stored.response) if stored else (None, None)
        if moment_id is None:
            made = await self._job_result(jobid)
            if isinstance(made, SendError):
                await self._save(pending, MomentTaskStatus.FAILED, None, (), made.response)
                return made
            if made is None:
                return None
            moment_id, note = made
        overdue = now - pending.accepted_at >= self._timeout
        return await self._published(pending, moment_id, note, overdue=overdue)

    async def _job_result(self, jobid: str) -> tuple[str, str] | SendError | None:
        """(moment_id, what WeCom noted) once the moment is made; None before."""
        api = "externalcontact/get_moment_task_result"
        answer = await self._client.call(api, self._secret, None, query={"jobid": jobid})
        if answer.get("status") != _DONE:
            return None
        result = answer.get("result") or {}
        errcode = result.get("errcode", 0)
        if errcode:
            return PermanentSendError(f"{api}: errcode={errcode} errmsg={result.get('errmsg', '')}")
        moment_id = str(result.get("moment_id") or "")
        if not moment_id:
            return PermanentSendError(f"{api}: task done without a moment_id")
        return moment_id, _invalid(result)

    async def _published(
        self, pending: Pending, moment_id: str, note: str | None, *, overdue: bool
    ) -> Report:
        staff = sorted(await publishers(self._client, self._secret, moment_id))
        said = f"moment {moment_id}" + (f"; {note}" if note else "")
        report: Report = None
        status = MomentTaskStatus.WAITING
        if staff:
            status = MomentTaskStatus.PUBLISHED
            report = SendResult(
                vendor_message_id=pending.vendor_ref,
                response=f"get_moment_task: {said}; published by {', '.join(staff)}",
            )
        elif overdue:
            await self._cancel(moment_id)
            hours = self._timeout.total_seconds() / 3600
            answer = f"{said}: no staff published it within {hours:g}h; task cancelled"
            status, report = MomentTaskStatus.FAILED, PermanentSendError(answer)
        await self._save(pending, status, moment_id, staff, note)
        return report

    async def _save(
        self,
        pending: Pending,
        status: MomentTaskStatus,
        moment_id: str | None,
        staff: Sequence[str],
        response: str | None,
    ) -> None:
        async with unit_of_work(self._sessions) as session:
            await repo.save_task(
                session,
                jobid=pending.vendor_ref,
                delivery_id=pending.message.delivery_id,
                status=status,
                moment_id=moment_id,
                published_by=staff,
                response=response,
                now=self._clock(),
            )

    async def _cancel(self, moment_id: str) -> None:
        """Stop a moment nobody published, so it cannot go out after SMR gave up on it."""
        # Best effort: the delivery is recorded failed either way.
        with contextlib.suppress(SendError):
            await self._client.call(
                "externalcontact/cancel_moment_task", self._secret, {"moment_id": moment_id}
            )


def moment_body(message: OutboundMessage, corp_tags: Mapping[str, str]) -> dict[str, Any]:
    """add_moment_task's text and visible_range (the attachments are added when uploaded)."""
    text = message.text or ""
    size = len(text.encode())
    if len(text) > TEXT_CHARS or size > TEXT_BYTES:
        raise PermanentSendError(
            f"text is {len(text)} characters ({size} bytes); Moments take {TEXT_CHARS} "
            f"({TEXT_BYTES} bytes)"
        )
    if not (text or message.attachments):
        raise PermanentSendError("a Moments post needs text or attachments")
    visible = visible_range(message.params, corp_tags)
    return {**rich.text_body(text), **({"visible_range": visible} if visible else {})}


def visible_range(params: Mapping[str, str], corp_tags: Mapping[str, str]) -> dict[str, Any]:
    """``sender_list`` from ``params.staff``, ``external_contact_list`` from ``params.tags``
    (SMR tags mapped to corp tag ids); empty: everyone in the app's range, publicly."""
    if unknown := sorted(set(params) - set(PARAMS)):
        raise PermanentSendError(
            f"unknown params {', '.join(unknown)}; a Moments post takes tags and staff"
        )
    tags, staff = _names(params.get("tags")), _names(params.get("staff"))
    if unmapped := [t for t in tags if t not in corp_tags]:
        raise PermanentSendError(
            f"tags {', '.join(unmapped)} have no WeCom corp tag id (wecom_tags in policies.yaml)"
        )
    visible: dict[str, Any] = {}
    if staff:
        visible["sender_list"] = {"user_list": staff}
    if tags:
        visible["external_contact_list"] = {"tag_list": [corp_tags[t] for t in tags]}
    return visible


def _names(value: str | None) -> list[str]:
    """Comma-separated names (either comma, ``,`` or ``，``), trimmed, each once, in order."""
    names = (value or "").replace("，", ",").split(",")
    return list(dict.fromkeys(n.strip() for n in names if n.strip()))


def _invalid(result: Mapping[str, Any]) -> str:
    """The senders and tags WeCom dropped (nonexistent or outside the app's range)."""
    parts = [
        f"{name}={listed}"
        for name in ("invalid_sender_list", "invalid_external_contact_list")
        if isinstance(listed := result.get(name), dict) and any(listed.values())
    ]
    return "; ".join(parts)


def make(wiring: Wiring) -> WeComMoments:
    """The channel, with the corp tags read from the playbooks folder's policies.yaml."""
    return WeComMoments(
        wiring.client,
        wiring.secret,
        clock=wiring.clock,
        timeout=wiring.task_timeout,
        sessions=wiring.sessions,
        corp_tags=CorpTags(wiring.playbooks_dir),
        media=wiring.media,
    )
