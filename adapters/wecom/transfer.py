"""WeCom customer transfer (客户继承), the ``wecom_transfer`` channel.

- 在职继承: externalcontact/transfer_customer (handover_userid, takeover_userid,
  external_userid[] ≤ 100, transfer_success_msg ≤ 200 characters), results from
  externalcontact/transfer_result;
- 离职继承 (params ``resigned: "true"``): resigned/transfer_customer and
  resigned/transfer_result, same fields, no transfer_success_msg.

The handover is the contact's owner staff, the takeover the params' ``to``. Customers of one
dispatch batch with the same (handover, takeover, kind, message) go in one call, 100 at a
time; WeCom answers each customer's errcode: 0 starts the transfer, which WeCom completes within
24 h unless the customer refuses, so the delivery is ``awaiting`` with the handover as its
vendor_ref. ``poll_reports`` reads transfer_result per (handover, takeover): status 1 接替完毕 →
sent, and the contact's ``wecom_owner`` becomes the takeover; 2 等待接替 → still awaiting;
3 客户拒绝, 4 接替成员客户达到上限, 5 无接替记录 → failed with that reason. Nothing reported
after ``REPORT_TIMEOUT`` → failed.

A transfer is counted by WeCom (at most twice per customer in 90 days, errcode 40128), so a
resend after a lost worker is not safe: the channel is not idempotent (the row becomes
``uncertain``). WeCom documents no errcode by which the 在职 API says the handover has resigned;
the caller says so (``resigned: true``), and 40097 (该成员尚未离职) from the 离职 API says they
have not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.wecom.channels import WeComChannel, need
from adapters.wecom.client import WeComClient
from adapters.wecom.errors import error_for
from adapters.wecom.wiring import Wiring
from smr.channels import (
    Address,
    Capabilities,
    OutboundMessage,
    Pending,
    PermanentSendError,
    SendError,
    SendResult,
    SkippedSend,
    send_alone,
)
from smr.db import unit_of_work
from smr.repositories import transfers as repo
from smr.statuses import SkipReason

MAX_CUSTOMERS = 100  # external_userid[] of one transfer_customer call
MESSAGE_CHARS = 200  # transfer_success_msg
PAGE = 1000  # transfer_result pages
REPORT_TIMEOUT = timedelta(hours=72)  # WeCom completes a transfer within 24 h
Answer = SendResult | SendError
Report = SendResult | SendError | None
#: (handover, takeover, resigned, message): what the customers of one call share.
CallKey = tuple[str, str, bool, str]

#: Per-customer (or whole-call) errcodes of the transfer APIs (全局错误码), explained.
REFUSALS: dict[int, str] = {
    40096: "不合法的外部联系人userid (not a customer of this corp)",
    40097: "该成员尚未离职: the owner staff has not resigned; transfer with resigned: false",
    40098: "成员尚未实名认证: the takeover staff is not verified",
    40099: "外部联系人的数量已达上限: the takeover staff has too many customers",
    40100: "此用户的外部联系人已经在转移流程中: a transfer is already under way",
    40128: "客户转接过于频繁: WeCom transfers a customer at most twice in 90 days",
    40129: "当前客户正在转接中: a transfer of this customer is already under way",
    40130: "原跟进人与接手人一样: the takeover is the owner staff already",
    40131: "handover_userid 并不是外部联系人的跟进人: the owner staff does not follow them",
}
#: transfer_result status → why the transfer failed (1 接替完毕 and 2 等待接替 are not failures).
FAILED_STATUS: dict[int, str] = {
    3: "客户拒绝: the customer refused the transfer",
    4: "接替成员客户达到上限: the takeover staff has too many customers",
    5: "无接替记录: WeCom has no record of this transfer",
}
_DONE, _WAITING = 1, 2


def _api(resigned: bool, name: str) -> str:
    return f"externalcontact/{'resigned/' if resigned else ''}{name}"


def _resigned(message: OutboundMessage) -> bool:
    return message.params.get("resigned") == "true"


class WeComTransfer(WeComChannel):
    """transfer_customer / resigned/transfer_customer; see the module docstring."""

    name: ClassVar[str] = "wecom.transfer"
    capabilities: ClassVar[Capabilities] = Capabilities(
        needs=frozenset({Address.OWNER_STAFF, Address.WECOM_USERID})
    )

    def __init__(
        self,
        client: WeComClient,
        secret: SecretStr,
        *,
        clock: Callable[[], datetime],
        sessions: async_sessionmaker[AsyncSession],
    ) -> None:
        super().__init__(client, secret, clock=clock)
        self._sessions = sessions

    async def send(self, message: OutboundMessage) -> SendResult:
        return await send_alone(self, message)

    async def send_batch(self, messages: Sequence[OutboundMessage]) -> list[Answer]:
        answers: dict[int, Answer] = {}
        calls: dict[CallKey, dict[str, int]] = {}  # key → customer → message index
        for i, message in enumerate(messages):
            try:
                key, customer = _call_key(message), _customer(message)
            except SendError as exc:
                answers[i] = exc
                continue
            customers = calls.setdefault(key, {})
            if customer in customers:
                answers[i] = SkippedSend(
                    SkipReason.DUPLICATE, response=f"{customer} is in this call"
                )
            else:
                customers[customer] = i
        for key, customers in calls.items():
            items = list(customers.items())
            for start in range(0, len(items), MAX_CUSTOMERS):
                chunk = dict(items[start : start + MAX_CUSTOMERS])
                answers.update(await self._transfer(key, chunk))
        return [answers[i] for i in range(len(messages))]

    async def _transfer(self, key: CallKey, customers: dict[str, int]) -> dict[int, Answer]:
        handover, takeover, resigned, text = key
        api = _api(resigned, "transfer_customer")
        body: dict[str, Any] = {
            "handover_userid": handover,
            "takeover_userid": takeover,
            "external_userid": list(customers),
        }
        if text and not resigned:
            body["transfer_success_msg"] = text
        try:
            answer = await self._client.call(api, self._secret, body)
        except SendError as exc:
            return dict.fromkeys(customers.values(), _explained(exc))
        rows = answer.get("customer") or []
        codes = {str(c.get("external_userid")): c.get("errcode") for c in rows}
        return {
            i: _accepted(api, handover, takeover, codes.get(customer))
            for customer, i in customers.items()
        }

    async def poll_reports(self, pending: Sequence[Pending], *, now: datetime) -> list[Report]:
        """transfer_result per (handover, takeover, kind); a takeover done records the
        contact's new owner staff before it is reported sent."""
        by_pair: dict[tuple[str, str, bool], list[int]] = {}
        for i, p in enumerate(pending):
            pair = (p.vendor_ref, p.message.params.get("to", ""), _resigned(p.message))
            by_pair.setdefault(pair, []).append(i)
        reports: list[Report] = [None] * len(pending)
        for (handover, takeover, resigned), indexes in by_pair.items():
            statuses = await self._results(handover, takeover, resigned)
            for i in indexes:
                customer = pending[i].message.recipient.get("wecom_userid", "")
                reports[i] = await self._report(pending[i], statuses.get(customer), takeover, now)
        return reports

    async def _results(
        self, handover: str, takeover: str, resigned: bool
    ) -> dict[str, dict[str, Any]]:
        body = {"handover_userid": handover, "takeover_userid": takeover}
        found: dict[str, dict[str, Any]] = {}
        cursor = ""
        for _ in range(1000):  # bounded: WeCom pages by 1000 customers
            api = _api(resigned, "transfer_result")
            answer = await self._client.call(api, self._secret, {**body, "cursor": cursor})
            for row in answer.get("customer") or []:
                found[str(row.get("external_userid"))] = row
            cursor = str(answer.get("next_cursor") or "")
            if not cursor:
                break
        return found

    async def _report(
        self, pending: Pending, row: dict[str, Any] | None, takeover: str, now: datetime
    ) -> Report:
        status = row.get("status") if row else None
        if status == _DONE:
            async with unit_of_work(self._sessions) as session:
                await repo.set_owner(
                    session, contact_id=pending.message.contact_id, owner=takeover, now=now
                )
            took = row.get("takeover_time") if row else None
            at = datetime.fromtimestamp(took, UTC) if isinstance(took, int) and took else None
            answer = f"transfer_result: status=1 接替完毕, {takeover} is the owner staff now"
            return SendResult(vendor_message_id=pending.vendor_ref, response=answer, sent_at=at)
        if isinstance(status, int) and status in FAILED_STATUS:
            return PermanentSendError(f"transfer_result: status={status} {FAILED_STATUS[status]}")
        if status != _WAITING and now - pending.accepted_at >= REPORT_TIMEOUT:
            hours = REPORT_TIMEOUT.total_seconds() / 3600
            return PermanentSendError(f"transfer_result: no result for the customer in {hours:g}h")
        return None


def _call_key(message: OutboundMessage) -> CallKey:
    handover = need(message, "owner_staff", "the contact has no owner staff (wecom_owner)")
    takeover = message.params.get("to", "")
    if not takeover:
        raise PermanentSendError("a transfer needs the takeover staff (params.to)")
    text = message.text or ""
    if len(text) > MESSAGE_CHARS:
        raise PermanentSendError(f"message is {len(text)} characters; WeCom takes {MESSAGE_CHARS}")
    return handover, takeover, _resigned(message), text


def _customer(message: OutboundMessage) -> str:
    return need(message, "wecom_userid", "the contact has no WeCom external_userid")


def _accepted(api: str, handover: str, takeover: str, errcode: Any) -> Answer:
    if errcode is None:
        return PermanentSendError(f"{api}: the customer is missing from WeCom's answer")
    if errcode != 0:
        return _refused(api, int(errcode))
    return SendResult(
        vendor_message_id=handover,
        response=f"{api}: started; {takeover} takes over within 24 h unless the customer refuses",
        awaiting=True,
    )


def _refused(api: str, errcode: int) -> SendError:
    if errcode in REFUSALS:
        return PermanentSendError(f"{api}: errcode={errcode} {REFUSALS[errcode]}")
    return error_for(api, errcode, "")


def _explained(exc: SendError) -> SendError:
    """A refusal of the whole call, with what its errcode means for a transfer."""
    for errcode, meaning in REFUSALS.items():
        if isinstance(exc, PermanentSendError) and f"errcode={errcode} " in exc.response:
            return PermanentSendError(f"{exc.response} ({meaning})")
    return exc


def make(wiring: Wiring) -> WeComTransfer:
    return WeComTransfer(wiring.client, wiring.secret, clock=wiring.clock, sessions=wiring.sessions)
