"""WeCom mass-send tasks (企业群发, externalcontact/add_msg_template, document/path/92135).

A call does not message anyone: it creates a task the sender (the owner staff) confirms in
WeCom, then WeCom sends it. So a delivery accepted into a task is ``awaiting``, with the task's
msgid as its vendor_ref; ``poll_reports`` reads the task's results later
(get_groupmsg_task → get_groupmsg_send_result, document/path/93338) and turns each into sent,
failed or skipped.

Deliveries of one dispatch batch with the same sender, text and attachments share one task (up
to 10,000 customers or 2,000 groups per call); the attachments are uploaded once per task.
``wecom`` sends to customers (chat_type single), one per contact's ``wecom_userid``;
``wecom_group`` to the customer group of the trigger (``chat_id``).
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.wecom import rich
from adapters.wecom.channels import WeComChannel, need, text_of
from adapters.wecom.client import WeComClient
from adapters.wecom.media import MediaStore
from smr.channels import (
    Address,
    Capabilities,
    OutboundMessage,
    Pending,
    PermanentSendError,
    SendError,
    SendResult,
    SkippedSend,
    Target,
    send_alone,
)
from smr.content import Attachment
from smr.db import unit_of_work
from smr.repositories import deliveries as deliveries_repo
from smr.statuses import SkipReason
from smr.subjects import group_contact_id

TEXT_BYTES = 4000
#: WeCom counts a group's monthly mass-sends by calendar month in China.
WECOM_TZ = ZoneInfo("Asia/Shanghai")
#: What deliveries of one task share: the sender, the text and the attachments.
TaskKey = tuple[str, str, tuple[Attachment, ...]]
PAGE = 1000  # get_groupmsg_task / get_groupmsg_send_result: limit ≤ 1000
Answer = SendResult | SendError
Report = SendResult | SendError | None

#: get_groupmsg_send_result status → what became of the delivery (0 未发送: not yet).
_SENT, _NOT_FRIEND, _OVER_QUOTA = 1, 2, 3


class WeComTasks(WeComChannel):
    """Mass-send tasks to customers (chat_type single); see the module docstring."""

    name: ClassVar[str] = "wecom.msg_template"
    capabilities: ClassVar[Capabilities] = Capabilities(
        needs=frozenset({Address.OWNER_STAFF, Address.WECOM_USERID}), confirmed_by_staff=True
    )
    chat_type: ClassVar[str] = "single"
    target_key: ClassVar[str] = "wecom_userid"
    targets_field: ClassVar[str] = "external_userid"
    result_field: ClassVar[str] = "external_userid"
    max_targets: ClassVar[int] = 10_000

    def __init__(
        self,
        client: WeComClient,
        secret: SecretStr,
        *,
        clock: Callable[[], datetime],
        timeout: timedelta,
        media: MediaStore | None = None,
    ) -> None:
        super().__init__(client, secret, clock=clock, media=media)
        self._timeout = timeout

    async def send(self, message: OutboundMessage) -> SendResult:
        return await send_alone(self, message)

    async def send_batch(self, messages: Sequence[OutboundMessage]) -> list[Answer]:
        """One add_msg_template call per (sender, text, attachments) and up to ``max_targets``
        targets."""
        answers: dict[int, Answer] = {}
        tasks: dict[TaskKey, dict[str, int]] = {}  # (sender, text, attachments) → target → message
        for i, message in enumerate(messages):
            try:
                key, target = self._task_key(message), self._target(message)
            except SendError as exc:
                answers[i] = exc
                continue
            targets = tasks.setdefault(key, {})
            if target in targets:
                answers[i] = SkippedSend(
                    SkipReason.DUPLICATE, response=f"{target} is in this task already"
                )
            else:
                targets[target] = i
        calls = [
            self._create(key, dict(chunk))
            for key, targets in tasks.items()
            for chunk in _chunks(list(targets.items()), self.max_targets)
        ]
        for created in await asyncio.gather(*calls):
            answers.update(created)
        return [answers[i] for i in range(len(messages))]

    def _task_key(self, message: OutboundMessage) -> TaskKey:
        sender = need(message, "owner_staff", "the contact has no owner staff (wecom_owner)")
        return sender, text_of(message, TEXT_BYTES), message.attachments

    def _target(self, message: OutboundMessage) -> str:
        return need(message, self.target_key, "the contact has no WeCom external_userid")

    async def _create(self, key: TaskKey, targets: dict[str, int]) -> dict[int, Answer]:
        sender, text, items = key
        body = {
            "chat_type": self.chat_type,
            self.targets_field: list(targets),
            "sender": sender,
            **rich.text_body(text),
        }
        api = "externalcontact/add_msg_template"
        try:
            answer = await rich.call(
                self._client, self._secret, api, body, items=items, media=self._media
            )
        except SendError as exc:
            return dict.fromkeys(targets.values(), exc)
        refused = set(answer.get("fail_list") or [])
        msgid = str(answer.get("msgid") or "")
        return {i: _accepted(target, sender, msgid, refused) for target, i in targets.items()}

    async def poll_reports(self, pending: Sequence[Pending], *, now: datetime) -> list[Report]:
        """What became of each pending delivery, task by task. A task still unsent after
        ``timeout`` is cancelled and its deliveries fail."""
        by_task: dict[str, list[int]] = {}
        for i, p in enumerate(pending):
            by_task.setdefault(p.vendor_ref, []).append(i)
        reports: list[Report] = [None] * len(pending)
        for msgid, indexes in by_task.items():
            found = await self._task_reports(msgid)
            overdue = False
            for i in indexes:
                target = pending[i].message.recipient.get(self.target_key, "")
                report = found.get(target)
                if report is None and now - pending[i].accepted_at >= self._timeout:
                    report, overdue = self._gave_up(msgid), True
                reports[i] = report
            if overdue:
                await self._cancel(msgid)
        return reports

    async def _task_reports(self, msgid: str) -> dict[str, Report]:
        """target → its report, for the staff members who have sent the task."""
        senders = [
            str(t["userid"])
            for t in await self._pages("get_groupmsg_task", {"msgid": msgid}, "task_list")
            if t.get("status") == 2  # 2 已发送 (0 未发送: the staff has not confirmed yet)
        ]
        reports: dict[str, Report] = {}
        for userid in senders:
            body = {"msgid": msgid, "userid": userid}
            for row in await self._pages("get_groupmsg_send_result", body, "send_list"):
                target = str(row.get(self.result_field) or "")
                reports[target] = _report(msgid, row)
        return reports

    async def _pages(self, api: str, body: dict[str, Any], field: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        cursor = ""
        while True:
            answer = await self._client.call(
                f"externalcontact/{api}", self._secret, {**body, "limit": PAGE, "cursor": cursor}
            )
            rows += answer.get(field) or []
            cursor = str(answer.get("next_cursor") or "")
            if not cursor:
                return rows

    def _gave_up(self, msgid: str) -> PermanentSendError:
        hours = self._timeout.total_seconds() / 3600
        return PermanentSendError(
            f"task {msgid}: the sender did not send it within {hours:g}h; task cancelled"
        )

    async def _cancel(self, msgid: str) -> None:
        """Stop a task nobody sent, so it cannot reach customers after SMR gave up on it."""
        # Best effort: the deliveries are recorded failed either way.
        with contextlib.suppress(SendError):
            await self._client.call(
                "externalcontact/cancel_groupmsg_send", self._secret, {"msgid": msgid}
            )


class WeComGroupTasks(WeComTasks):
    """Mass-send tasks to customer groups (chat_type group): the group is the trigger's chat_id,
    the sender its contact's owner staff."""

    name: ClassVar[str] = "wecom.group_msg_template"
    capabilities: ClassVar[Capabilities] = Capabilities(
        needs=frozenset({Address.OWNER_STAFF, Address.CHAT_ID}),
        confirmed_by_staff=True,
        target=Target.GROUP,
    )
    chat_type: ClassVar[str] = "group"
    target_key: ClassVar[str] = "chat_id"
    targets_field: ClassVar[str] = "chat_id_list"
    result_field: ClassVar[str] = "chat_id"
    max_targets: ClassVar[int] = 2_000

    def __init__(
        self,
        client: WeComClient,
        secret: SecretStr,
        *,
        clock: Callable[[], datetime],
        timeout: timedelta,
        media: MediaStore | None = None,
        sessions: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        super().__init__(client, secret, clock=clock, timeout=timeout, media=media)
        self._sessions = sessions

    def _target(self, message: OutboundMessage) -> str:
        return need(message, self.target_key, "the trigger event names no customer group")

    async def send_batch(self, messages: Sequence[OutboundMessage]) -> list[Answer]:
        """As for customers, except that a group which has had its month's quota of
        mass-sends gets no task (``quota_exhausted``, counted for groups' own runs)."""
        over = await self._over_quota(messages)
        allowed = [m for m in messages if m.delivery_id not in over]
        sent = await super().send_batch(allowed)
        answered = {m.delivery_id: a for m, a in zip(allowed, sent, strict=True)}
        return [over.get(m.delivery_id) or answered[m.delivery_id] for m in messages]

    async def _over_quota(self, messages: Sequence[OutboundMessage]) -> dict[str, SkippedSend]:
        """WeCom: each customer group receives at most as many mass-sends a month as the month
        has days (corp and staff sends together; the excess is silently not delivered)."""
        chats = {m.delivery_id: m.recipient.get(self.target_key) for m in messages}
        by_contact = {group_contact_id(c): c for c in chats.values() if c}
        if self._sessions is None or not by_contact:
            return {}
        local = self._clock().astimezone(WECOM_TZ)
        month = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        quota = calendar.monthrange(local.year, local.month)[1]
        async with unit_of_work(self._sessions) as session:
            found = await deliveries_repo.posts_since(
                session, list(by_contact), since=month, exclude=list(chats)
            )
        made = {by_contact[cid]: n for cid, n in found.items()}
        over: dict[str, SkippedSend] = {}
        for message in messages:
            chat = chats[message.delivery_id]
            if not chat:
                continue
            if made.get(chat, 0) >= quota:
                answer = (
                    f"group {chat} has had {made[chat]} mass-sends since {month:%Y-%m-%d}; "
                    f"WeCom delivers at most {quota} a month (the days in the month)"
                )
                over[message.delivery_id] = SkippedSend(SkipReason.QUOTA_EXHAUSTED, response=answer)
            else:
                made[chat] = made.get(chat, 0) + 1
        return over


def _accepted(target: str, sender: str, msgid: str, refused: set[str]) -> Answer:
    if target in refused:
        return PermanentSendError(
            f"add_msg_template: {target} in fail_list (not {sender}'s customer, or cannot receive)"
        )
    if not msgid:
        return PermanentSendError("add_msg_template: errcode=0 without a msgid")
    return SendResult(
        vendor_message_id=msgid,
        response=f"add_msg_template: task {msgid} created, awaiting {sender}'s confirmation",
        awaiting=True,
    )


def _report(msgid: str, row: dict[str, Any]) -> Report:
    status = row.get("status")
    if status == _SENT:
        sent = row.get("send_time")
        return SendResult(
            vendor_message_id=msgid,
            response=f"get_groupmsg_send_result: status=1 已发送 send_time={sent}",
            sent_at=datetime.fromtimestamp(sent, UTC) if isinstance(sent, int) and sent else None,
        )
    if status == _NOT_FRIEND:
        return PermanentSendError("get_groupmsg_send_result: status=2 因客户不是好友导致发送失败")
    if status == _OVER_QUOTA:
        answer = "get_groupmsg_send_result: status=3 因客户已经收到其他群发消息导致发送失败"
        return SkippedSend(SkipReason.QUOTA_EXHAUSTED, response=answer)
    return None  # 0 未发送


def _chunks(items: list[tuple[str, int]], size: int) -> list[list[tuple[str, int]]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
